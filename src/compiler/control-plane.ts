import type { Fabric } from '../topology/fabric.js';
import { hostCpuCostsOf, pcieLoadSeconds, pcieShareOf, readbackSeconds, stageSeconds } from '../topology/host.js';
import { planSlots, type Plan, type Prediction, type Program } from './plan.js';

/**
 * The control plane of a Plan, predicted: one host agent per node server the plan occupies (spare
 * nodes of its racks included), each with the topology's CPUs. What they hold in RAM, how long
 * their chips take to load over PCIe, and how busy their CPUs are while the Plan decodes at its
 * batch and predicted rate. The same costs drive the host agents' virtual-time CPUs at run time
 * (control/host-cpu.ts); docs/compiler.md, "Control plane", gives every parameter's source.
 */

/**
 * Bytes of program per instruction loaded into a chip: the emulator's instruction record (kind,
 * tick, end or arrival, op or tensor, peer, bytes: 8 fields of 32 bits). Groq's binaries (VLIW streams
 * for 144 instruction queues) are not published; weights outweigh programs by orders of magnitude.
 */
export const PROGRAM_BYTES_PER_INSTRUCTION = 32;

/**
 * Prompt tokens per generated token in the steady-state request mix the utilisation assumes: each
 * request brings --prompt-tokens and generates as many. Assumed (no published mix for Groq's API).
 */
export const PROMPT_TOKENS_PER_OUTPUT_TOKEN = 1;

export interface ControlPlaneReport {
  /** Host agents: node servers the plan occupies, the spare nodes of its racks included. */
  hosts: number;
  cpus: number;
  cpus_per_host: number;
  /** Busy fraction of all the hosts' CPUs, and of the busiest host's, at the planned batch and rate. */
  cpu_utilisation_mean: number;
  cpu_utilisation_max: number;
  busiest_host: string;
  /** Busy CPU seconds per second of each kind of work, all hosts together. */
  cpu_seconds_per_second: {
    stage: number;
    readback: number;
    tokenise: number;
    detokenise: number;
    health_poll: number;
  };
  /** Host staging each step's input ids (the chip holding `tok`) and reading back sampled ids (the sampler). */
  stage_host: string;
  readback_host: string;
  /** Start-up: every host loads its chips' programs and weights at once; the slowest host's time. */
  load_time_s: number;
  load_bytes_per_host_max: number;
  program_bytes_total: number;
  /** Programs and weights each host keeps in RAM to reload its chips, the fullest host and all together. */
  host_ram_bytes_per_host_max: number;
  host_ram_bytes_total: number;
  /** RAM of one host (host.ram_gib). */
  host_ram_capacity_bytes: number;
  assumed_prompt_tokens_per_output_token: number;
}

/**
 * Global node indices the plan occupies, ascending: every node holding a chip with work, plus the
 * spare nodes of the racks those are in (they stand by for failover).
 */
export function occupiedNodes(plan: Plan, fabric: Fabric): number[] {
  const used = plan.placement.filter((p) => p.role !== 'spare' && p.role !== 'idle');
  const racks = new Set(used.map((p) => fabric.rackOf(p.chip)));
  const nodes = new Set(used.map((p) => fabric.globalNodeOf(p.chip)));
  for (const p of plan.placement)
    if (p.role === 'spare' && racks.has(fabric.rackOf(p.chip))) nodes.add(fabric.globalNodeOf(p.chip));
  return [...nodes].sort((a, b) => a - b);
}

export function programBytes(prog: Program): number {
  return (prog.prefill.instructions.length + prog.decode.instructions.length) * PROGRAM_BYTES_PER_INSTRUCTION;
}

/** Program and weight bytes each chip receives at load, by chip index. */
export function loadBytesPerChip(plan: Plan, fabric: Fabric): number[] {
  const bytes = new Array<number>(fabric.chipCount).fill(0);
  for (const p of plan.placement) bytes[p.chip] += p.memory.weightBytes;
  for (const [chip, prog] of plan.programs) bytes[chip] += programBytes(prog);
  return bytes;
}

/**
 * Seconds to load the given bytes per chip (by chip index) from host RAM: each host over its cards'
 * own PCIe links and its shared root, all hosts at once, so the slowest host's time.
 */
export function loadSeconds(bytesPerChip: readonly number[], fabric: Fabric): number {
  const share = pcieShareOf(fabric.topology);
  const cpn = fabric.chipsPerNode;
  let seconds = 0;
  for (let base = 0; base < bytesPerChip.length; base += cpn) {
    const bytes = bytesPerChip.slice(base, base + cpn);
    if (bytes.some((b) => b > 0)) seconds = Math.max(seconds, pcieLoadSeconds(bytes, share));
  }
  return seconds;
}

/** Busy CPU seconds per second of the request path, by kind, at the Plan's batch and predicted decode rate. */
function requestPathLoad(plan: Plan, predicted: Prediction) {
  const o = plan.options;
  const c = hostCpuCostsOf(plan.topology);
  const decodeStepsPerS = 1000 / predicted.tpot_ms;
  const outTokensPerS = predicted.tokens_per_s_total;
  const promptTokensPerS = PROMPT_TOKENS_PER_OUTPUT_TOKEN * outTokensPerS;
  const requestsPerS = promptTokensPerS / o.promptTokens;
  const prefillStepsPerS = requestsPerS * Math.ceil(o.promptTokens / o.prefillChunk);
  return {
    // every decode step's row ids, and each prompt in its prefill chunks
    stage:
      decodeStepsPerS * stageSeconds(c, planSlots(o)) +
      prefillStepsPerS * c.stagePerStepS +
      promptTokensPerS * c.stagePerRowS,
    // every decode step's sampled ids, and each request's first token after its prefill
    readback: decodeStepsPerS * readbackSeconds(c, planSlots(o)) + requestsPerS * readbackSeconds(c, 1),
    tokenise: promptTokensPerS * c.tokenisePerTokenS,
    detokenise: outTokensPerS * c.detokenisePerTokenS,
  };
}

export function controlPlane(plan: Plan, fabric: Fabric, predicted: Prediction): ControlPlaneReport {
  const t = plan.topology;
  const c = hostCpuCostsOf(t);
  const nodes = occupiedNodes(plan, fabric);
  const perChip = loadBytesPerChip(plan, fabric);
  const cpn = fabric.chipsPerNode;
  const hostId = (node: number) => fabric.hostId(node * cpn);
  const decode = plan.steps.decode;
  const tokChip = decode.tensors.find((x) => x.name === 'tok')?.chip ?? plan.layout.sampler;
  const stageNode = fabric.globalNodeOf(tokChip);
  const readbackNode = fabric.globalNodeOf(plan.layout.sampler);

  const load = requestPathLoad(plan, predicted);
  const healthPerHost = (cpn * c.healthPollPerChipS) / c.healthPollIntervalS;
  // tokenisation follows the requests, which the coordinator deals round-robin to the host agents
  const tokenPerHost = (load.tokenise + load.detokenise) / nodes.length;

  let loadMax = 0;
  let ramTotal = 0;
  let busyTotal = 0;
  let busiest = { node: nodes[0], util: -1 };
  for (const node of nodes) {
    const bytes = perChip.slice(node * cpn, (node + 1) * cpn);
    const held = bytes.reduce((a, b) => a + b, 0);
    loadMax = Math.max(loadMax, held);
    ramTotal += held;
    const busy =
      healthPerHost +
      tokenPerHost +
      (node === stageNode ? load.stage : 0) +
      (node === readbackNode ? load.readback : 0);
    busyTotal += busy;
    const util = busy / t.cpus_per_node;
    if (util > busiest.util) busiest = { node, util };
  }
  let programTotal = 0;
  for (const prog of plan.programs.values()) programTotal += programBytes(prog);
  return {
    hosts: nodes.length,
    cpus: nodes.length * t.cpus_per_node,
    cpus_per_host: t.cpus_per_node,
    cpu_utilisation_mean: busyTotal / (nodes.length * t.cpus_per_node),
    cpu_utilisation_max: busiest.util,
    busiest_host: hostId(busiest.node),
    cpu_seconds_per_second: { ...load, health_poll: healthPerHost * nodes.length },
    stage_host: hostId(stageNode),
    readback_host: hostId(readbackNode),
    // chips of nodes the plan does not occupy load nothing
    load_time_s: loadSeconds(perChip, fabric),
    load_bytes_per_host_max: loadMax,
    program_bytes_total: programTotal,
    host_ram_bytes_per_host_max: loadMax,
    host_ram_bytes_total: ramTotal,
    host_ram_capacity_bytes: t.host.ram_gib * 2 ** 30,
    assumed_prompt_tokens_per_output_token: PROMPT_TOKENS_PER_OUTPUT_TOKEN,
  };
}
