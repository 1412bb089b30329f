import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import { controlPlane, loadBytesPerChip } from '../src/compiler/control-plane.js';
import { HardwareModel } from '../src/compiler/cost.js';
import type { Plan } from '../src/compiler/plan.js';
import { predict } from '../src/compiler/report.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { paramCounts } from '../src/model/config.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology, parseSetArg } from '../src/topology/load.js';
import { type RackemuError } from '../src/util/errors.js';
import { topo } from './helpers/cli.js';
import { checkStepInvariants, maxMemoryOverTicks } from './helpers/plan-checks.js';

const mixtral = BUILTIN_MODELS['mixtral-8x7b'];

describe('compiler', () => {
  let plan: Plan;
  let fabric: Fabric;
  beforeAll(() => {
    const t = loadTopology(topo('groq-576'));
    fabric = new Fabric(t);
    plan = compile(t, mixtral, {}, fabric);
  });

  it('compiler - mixtral-8x7b fits groq-576 on at most 512 active chips with 64 spares holding nothing', () => {
    const used = plan.placement.filter((p) => p.role !== 'spare' && p.role !== 'idle');
    expect(used.length).toBeLessThanOrEqual(512);
    const spares = plan.placement.filter((p) => p.role === 'spare');
    expect(spares.length).toBe(64);
    for (const s of spares) {
      expect(fabric.isSpare(s.chip)).toBe(true);
      expect(s.memory.weightBytes + s.memory.kvBytes + s.memory.peakActivationBytes.decode).toBe(0);
    }
    for (const step of [plan.steps.decode, plan.steps.prefill]) {
      for (const op of step.ops) expect(fabric.isSpare(op.chip)).toBe(false);
      for (const tr of step.transfers) expect(fabric.isSpare(tr.src) || fabric.isSpare(tr.dst)).toBe(false);
    }
    // groups of whole layers; DESIGN.md's sketch of 32 x 16 chips is what --layout-search classic finds
    expect(plan.layout.groups.length).toBe(Math.ceil(32 / plan.layout.layersPerGroup));
    // every layer, every expert slice and every vocabulary row is placed exactly once
    const layers = plan.layout.groups.flatMap((g) => g.layers).sort((a, b) => a - b);
    expect(layers).toEqual([...Array(32).keys()]);
    for (const slices of [plan.layout.embed, plan.layout.lmHead]) {
      expect(slices[0].start).toBe(0);
      slices.forEach((s, i) => i > 0 && expect(s.start).toBe(slices[i - 1].end));
      expect(slices[slices.length - 1].end).toBe(mixtral.vocab);
    }
  });

  it('compiler - decode and prefill steps: links exist, none oversubscribed, ops wait for inputs', () => {
    checkStepInvariants(plan, fabric, plan.steps.decode);
    checkStepInvariants(plan, fabric, plan.steps.prefill);
  });

  it('compiler - no chip exceeds its SRAM at any tick', () => {
    for (const step of [plan.steps.decode, plan.steps.prefill]) {
      const worst = maxMemoryOverTicks(plan, step);
      expect(worst.bytes).toBeLessThanOrEqual(plan.capacityBytes);
    }
    for (const p of plan.placement) {
      const m = p.memory;
      expect(
        m.weightBytes + m.kvBytes + Math.max(m.peakActivationBytes.prefill, m.peakActivationBytes.decode),
      ).toBeLessThanOrEqual(plan.capacityBytes);
    }
  });

  it('compiler - the schedule reserves every expert slice for the worst routing, so routing cannot change it', () => {
    const hw = new HardwareModel(plan.topology, mixtral, 'bf16');
    const ffnOps = plan.steps.decode.ops.filter((o) => o.kernel.kind === 'ffn');
    // every FFN chip of every group computes its slice of all 8 experts' units in every step, routed to or not
    expect(ffnOps.length).toBe(32 * plan.layout.ffnSlices);
    for (const op of ffnOps) {
      if (op.kernel.kind !== 'ffn') continue;
      expect(new Set(op.kernel.units.map((u) => u.expert)).size).toBe(8);
      // batch 1, top-2: the op streams exactly two experts' slices, whichever two the router picks
      const width = op.kernel.units[0].end - op.kernel.units[0].start;
      expect(op.weightBytes).toBe(2 * 3 * mixtral.hidden * width * 2 + 8 * mixtral.hidden * 2);
      expect(op.end - op.start).toBe(hw.opCost(op.kernel, 1, 1, plan.options.context, 1).ticks);
    }
    // compiling again gives the same timeline: nothing but topology, model shape and options goes in
    const again = compile(plan.topology, mixtral, {});
    expect(again.steps.decode.lengthTicks).toBe(plan.steps.decode.lengthTicks);
    expect(again.steps.decode.transfers.map((t) => [t.src, t.dst, t.depart])).toEqual(
      plan.steps.decode.transfers.map((t) => [t.src, t.dst, t.depart]),
    );
  });

  it('compiler - predicted tokens/s follows the calibrated rate and the published figure', () => {
    const p = predict(plan);
    expect(p.tokens_per_s_per_user).toBeGreaterThan(470);
    expect(p.tokens_per_s_per_user).toBeLessThan(490);
    expect(p.tpot_ms).toBeCloseTo(plan.steps.decode.lengthTicks / 900e3, 9);
    expect(p.breakdown.compute_ms + p.breakdown.transfer_ms + p.breakdown.sync_ms).toBeLessThanOrEqual(
      p.tpot_ms + 1e-9,
    );
  });

  it('compiler - control plane of mixtral-8x7b on groq-576: 72 hosts, 144 CPUs, PCIe load, weights in host RAM', () => {
    const cp = controlPlane(plan, fabric, predict(plan));
    expect(cp.hosts).toBe(72);
    expect(cp.cpus).toBe(144);
    expect(cp.cpu_utilisation_mean).toBeGreaterThan(0);
    expect(cp.cpu_utilisation_max).toBeGreaterThan(cp.cpu_utilisation_mean);
    expect(cp.cpu_utilisation_max).toBeLessThan(1);
    // the kinds of work add up to the mean over all CPUs
    const perS = Object.values(cp.cpu_seconds_per_second).reduce((a, b) => a + b, 0);
    expect(perS / cp.cpus).toBeCloseTo(cp.cpu_utilisation_mean, 12);
    // staging and readback happen where the step's ids live: the sampler's host, the busiest
    const samplerHost = fabric.hostId(plan.layout.sampler);
    expect([cp.stage_host, cp.readback_host, cp.busiest_host]).toEqual([samplerHost, samplerHost, samplerHost]);
    // the hosts keep the bf16 weights (93.4 GB), the extra copies of K/V projections a split by
    // query-head groups makes, and a few kB of programs
    const copies = Math.max(1, plan.layout.attentionChips / mixtral.kvHeads) - 1;
    const kvProjections = 2 * mixtral.layers * mixtral.hidden * mixtral.kvHeads * mixtral.headDim;
    const weights = (paramCounts(mixtral).total + copies * kvProjections) * 2;
    expect(Math.abs(cp.host_ram_bytes_total - weights) / weights).toBeLessThan(0.005);
    expect(cp.host_ram_bytes_total).toBeGreaterThan(cp.program_bytes_total);
    expect(cp.host_ram_bytes_per_host_max).toBeLessThan(cp.host_ram_capacity_bytes);
    expect(cp.host_ram_capacity_bytes).toBe(2048 * 2 ** 30);
    // each card on its own Gen4 x16: start-up takes as long as the fullest chip at 32 GB/s
    const fullest = Math.max(...loadBytesPerChip(plan, fabric));
    expect(cp.load_time_s).toBeCloseTo(fullest / 32e9, 12);
    expect(cp.load_time_s).toBeGreaterThan(0.004);
    expect(cp.load_time_s).toBeLessThan(0.01);
  });

  it('compiler - host CPU load follows steps and tokens per second and the topology costs', () => {
    const t = loadTopology(topo('groq-576'));
    const one = compile(t, mixtral, { context: 4096 }, fabric);
    const eight = compile(t, mixtral, { context: 4096, batch: 8 }, fabric);
    const at = (p: Plan) => controlPlane(p, fabric, predict(p));
    // per-token work grows with the batch's tokens/s ...
    const p8 = predict(eight);
    expect(p8.tokens_per_s_total).toBeGreaterThan(predict(one).tokens_per_s_total);
    const us = t.host.cpu_us;
    expect(at(eight).cpu_seconds_per_second.detokenise).toBeCloseTo(
      p8.tokens_per_s_total * us.detokenise_per_token * 1e-6,
      12,
    );
    expect(at(eight).cpu_seconds_per_second.tokenise).toBeCloseTo(
      p8.tokens_per_s_total * us.tokenise_per_token * 1e-6,
      12,
    );
    // ... per-step work with the steps/s: each decode step reads back 8 ids, each request its first token
    const stepsPerS = 1000 / p8.tpot_ms;
    const requestsPerS = p8.tokens_per_s_total / eight.options.promptTokens;
    expect(at(eight).cpu_seconds_per_second.readback).toBeCloseTo(
      (stepsPerS * (us.readback_per_step + 8 * us.readback_per_row) +
        requestsPerS * (us.readback_per_step + us.readback_per_row)) *
        1e-6,
      12,
    );
    const slow = loadTopology(topo('groq-576'), [parseSetArg('host.cpu_us.readback_per_step=5000')]);
    const slowPlan = compile(slow, mixtral, { context: 4096 }, new Fabric(slow));
    // 5 ms of readback per 2.08 ms step: more than the host's 2 CPUs can give
    expect(controlPlane(slowPlan, new Fabric(slow), predict(slowPlan)).cpu_utilisation_max).toBeGreaterThan(1);
  });

  it('compiler - llama-2-70b needs 8-bit weights on groq-576', () => {
    const t = loadTopology(topo('groq-576'));
    let err: RackemuError | undefined;
    try {
      compile(t, BUILTIN_MODELS['llama-2-70b'], { dtype: 'bf16' });
    } catch (e) {
      err = e as RackemuError;
    }
    expect(err?.code).toBe('RACKEMU_ERR_DOES_NOT_FIT');
    expect(err?.exitCode).toBe(2);
    expect(err?.message).toMatch(/needs [\d.]+ GB .* hold [\d.]+ GB/);
    expect(err?.message).toContain('--dtype int8');
    const int8 = compile(t, BUILTIN_MODELS['llama-2-70b'], { dtype: 'int8' });
    expect(int8.placement.filter((p) => p.role === 'layers').length).toBeLessThanOrEqual(512);
  });

  it('compiler - a model whose total fits but whose smallest share does not names the share, not a chip count', () => {
    // 2 KV heads, 8 layers: at most 64 chips per layer on groq-576, and one KV head's attention with its
    // KV cache for 512 tokens does not fit a 10 KiB chip, however many chips there are
    const small = loadTopology(topo('groq-576'), [parseSetArg('chip.sram_mib=0.01')]);
    let err: RackemuError | undefined;
    try {
      compile(small, BUILTIN_MODELS['mixtral-tiny'], { context: 512 });
    } catch (e) {
      err = e as RackemuError;
    }
    expect(err?.code).toBe('RACKEMU_ERR_DOES_NOT_FIT');
    expect(err?.message).toMatch(/total \(.*\) is below .* but a chip's smallest share of one layer/);
    expect(err?.message).not.toMatch(/active chips of/);
    const need = err?.details.chip_bytes_needed as number;
    expect(need).toBeGreaterThan(0.01 * 2 ** 20);
    // chips of the size it names fit the model
    const mib = Math.ceil((need / 2 ** 20) * 1000) / 1000;
    const enough = loadTopology(topo('groq-576'), [parseSetArg(`chip.sram_mib=${mib}`)]);
    expect(() => compile(enough, BUILTIN_MODELS['mixtral-tiny'], { context: 512 })).not.toThrow();
  });

  it('compiler - shrunk SRAM spreads mixtral-tiny over hundreds of chips', () => {
    const t = loadTopology(topo('groq-576'), [parseSetArg('chip.sram_mib=0.03')]);
    const tiny = compile(t, BUILTIN_MODELS['mixtral-tiny'], { context: 64, promptTokens: 8 });
    const used = tiny.placement.filter((p) => p.role !== 'spare' && p.role !== 'idle').length;
    expect(used).toBeGreaterThanOrEqual(256);
    checkStepInvariants(tiny, new Fabric(t), tiny.steps.decode);
    expect(maxMemoryOverTicks(tiny, tiny.steps.decode).bytes).toBeLessThanOrEqual(tiny.capacityBytes);
  });

  it('compiler - the full layout search finds a faster mixtral-8x7b split on groq-576 than the classic one: query-head groups on chips of their own', () => {
    const t = loadTopology(topo('groq-576'));
    const f = new Fabric(t);
    const full = plan;
    const classic = compile(t, mixtral, { layoutSearch: 'classic' }, f);
    // the classic search finds DESIGN.md's sketch: 32 groups of 16 chips, attention by KV heads over 8 of them
    expect([classic.layout.groups.length, classic.layout.chipsPerGroup, classic.layout.attentionChips]).toEqual([
      32, 16, 8,
    ]);
    const l = full.layout;
    // the attention parts have chips of their own, the FFN slices the rest of the group
    expect(l.attentionChips + l.ffnSlices).toBe(l.chipsPerGroup);
    expect(l.attentionChips % mixtral.kvHeads).toBe(0);
    expect(predict(full).tokens_per_s_per_user).toBeGreaterThan(predict(classic).tokens_per_s_per_user);
    checkStepInvariants(full, f, full.steps.decode);
    expect(maxMemoryOverTicks(full, full.steps.decode).bytes).toBeLessThanOrEqual(full.capacityBytes);
    // a KV head read by several attention chips is on each of them: every chip holds the KV heads its query heads read
    const group = l.groups[0];
    const attention = full.steps.decode.ops.filter(
      (o) => o.kernel.kind === 'attention' && group.chips.includes(o.chip),
    );
    const kvCopies = new Map<number, number>();
    for (const op of attention) {
      if (op.kernel.kind !== 'attention' || op.kernel.layer !== group.layers[0]) continue;
      const k = op.kernel;
      const groupSize = mixtral.heads / mixtral.kvHeads;
      expect(k.kvHeadStart).toBe(Math.floor(k.headStart / groupSize));
      expect(k.kvHeadEnd).toBe(Math.ceil(k.headEnd / groupSize));
      for (let h = k.kvHeadStart; h < k.kvHeadEnd; h++) kvCopies.set(h, (kvCopies.get(h) ?? 0) + 1);
    }
    expect([...kvCopies.values()]).toEqual(Array(mixtral.kvHeads).fill(l.attentionChips / mixtral.kvHeads));
    expect(() => compile(t, mixtral, { layoutSearch: 'widest' as 'full' })).toThrow(/--layout-search/);
  });

  it('compiler - GPU topologies place weights in HBM and compile', () => {
    for (const name of ['h100-8x', 'a100-8x']) {
      const p = compile(loadTopology(topo(name)), mixtral, {});
      expect(p.memoryKind).toBe('hbm');
      expect(p.placement.filter((c) => c.role === 'layers')).toHaveLength(8);
      checkStepInvariants(p, new Fabric(p.topology), p.steps.decode);
    }
  });

  it('compiler - mixtral-8x7b compiles on groq-10440 and leaves the rest idle or spare', () => {
    const t = loadTopology(topo('groq-10440'));
    const f = new Fabric(t);
    const big = compile(t, mixtral, {}, f);
    const roles = new Map<string, number>();
    for (const p of big.placement) roles.set(p.role, (roles.get(p.role) ?? 0) + 1);
    expect(roles.get('spare')).toBe(145 * 8);
    expect(roles.get('idle')).toBeGreaterThan(0);
    checkStepInvariants(big, f, big.steps.decode);
  });

  it('compiler - bad options are coded errors', () => {
    const t = loadTopology(topo('groq-576'));
    expect(() => compile(t, mixtral, { batch: 0 })).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_COMPILE_OPTION' }),
    );
    expect(() => compile(t, mixtral, { context: 1e6 })).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_COMPILE_OPTION' }),
    );
    expect(() => compile(t, mixtral, { context: 64, promptTokens: 64 })).toThrow(
      expect.objectContaining({ code: 'RACKEMU_ERR_COMPILE_OPTION' }),
    );
  });
});

describe('compiler programs', () => {
  it('compiler - every chip Program is in tick order and its sends and receives pair up across chips', () => {
    const t = loadTopology(topo('groq-576'));
    const plan = compile(t, mixtral, {});
    for (const kind of ['prefill', 'decode'] as const) {
      const sends: string[] = [];
      const recvs: string[] = [];
      let computes = 0;
      for (const [chip, prog] of plan.programs) {
        const ins = prog[kind].instructions;
        for (let i = 1; i < ins.length; i++) expect(ins[i].tick).toBeGreaterThanOrEqual(ins[i - 1].tick);
        for (const i of ins) {
          if (i.kind === 'send') sends.push(`${chip}>${i.to}:${i.tensor}@${i.arrive}`);
          if (i.kind === 'recv') {
            recvs.push(`${i.from}>${chip}:${i.tensor}@${i.tick}`);
            expect(i.needBy).toBeGreaterThanOrEqual(i.tick);
          }
          if (i.kind === 'compute') computes++;
        }
      }
      expect(sends.sort()).toEqual(recvs.sort());
      expect(sends.length).toBe(plan.steps[kind].transfers.length);
      expect(computes).toBe(plan.steps[kind].ops.length);
    }
  });
});
