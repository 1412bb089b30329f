import { Fabric } from '../topology/fabric.js';
import { CompileError } from '../util/errors.js';
import { compile } from './compile.js';
import type { Plan, Substitution } from './plan.js';
import { reloadOf, type Reload } from './reload.js';

/**
 * Recovery is re-planning: a compiler-scheduled machine cannot route around a failure at run time, so
 * the coordinator compiles again with the failed parts removed and the rack's spare node in. The spare
 * takes the retired node's place in the active chip order, position for position, so it holds exactly
 * what the retired node held and every other chip keeps its weights.
 */

export interface Retirement {
  /** Global node indices (Fabric.globalNodeOf) of failed nodes. */
  readonly nodes: readonly number[];
  /** Failed links as chip pairs; both directions fail. */
  readonly links?: readonly (readonly [number, number])[];
}

export interface Replan {
  readonly plan: Plan;
  readonly fabric: Fabric;
  /** Every substitution in effect (earlier re-plans' included). */
  readonly substitutions: readonly Substitution[];
  readonly reload: Reload;
}

export function replan(previous: Plan, retirement: Retirement): Replan {
  const topology = previous.topology;
  const plain = new Fabric(topology);
  const cpn = plain.chipsPerNode;
  const nodeCount = plain.chipCount / cpn;
  for (const n of retirement.nodes) {
    if (!Number.isInteger(n) || n < 0 || n >= nodeCount) {
      throw new CompileError('RACKEMU_ERR_COMPILE_OPTION', `retired node ${n}: not a node of ${topology.name}`, {
        details: { expected: `0..${nodeCount - 1}`, got: String(n) },
      });
    }
  }
  const retired = [...new Set([...(previous.retired ?? []), ...retirement.nodes])];
  const gone = new Set(retired);
  const subs = new Map((previous.substitutions ?? []).map((s) => [s.retired, s.spare]));
  const hasWork = (node: number) =>
    previous.placement.slice(node * cpn, (node + 1) * cpn).some((p) => p.role !== 'spare' && p.role !== 'idle');
  const isSpareNode = (node: number) => plain.isSpare(node * cpn);

  for (const node of retired.slice(previous.retired?.length ?? 0)) {
    const standIn = [...subs].find(([, spare]) => spare === node);
    // a spare already standing in hands its place on; a node with work takes a spare; idle ones just leave
    const base = standIn ? standIn[0] : !isSpareNode(node) && hasWork(node) ? node : undefined;
    if (base === undefined) continue;
    const used = new Set(subs.values());
    const rack = plain.rackOf(base * cpn);
    const rackNodes = Array.from({ length: plain.nodesPerRack }, (_, i) => rack * plain.nodesPerRack + i);
    const spare = rackNodes.find((n) => isSpareNode(n) && !gone.has(n) && !used.has(n));
    const failedHere = retired.filter((n) => plain.rackOf(n * cpn) === rack);
    if (spare === undefined) throw noSpare(plain, rack, failedHere);
    subs.set(base, spare);
  }

  // The active order of a plain compile, with each retired node's chips swapped for its stand-in's.
  const active: number[] = [];
  for (let node = 0; node < nodeCount; node++) {
    if (isSpareNode(node)) continue;
    const at = subs.get(node) ?? (gone.has(node) ? undefined : node);
    if (at !== undefined) for (let c = 0; c < cpn; c++) active.push(at * cpn + c);
  }
  const failedLinks = [...(previous.failedLinks ?? []), ...(retirement.links ?? [])];
  const failedChips = retired.flatMap((n) => Array.from({ length: cpn }, (_, c) => n * cpn + c));
  const fabric = new Fabric(topology, { failedChips, failedLinks });
  const substitutions = [...subs].map(([r, spare]) => ({ retired: r, spare }));
  const compiled = compile(topology, previous.model, previous.options, fabric, active);
  const plan: Plan = { ...compiled, retired, substitutions, failedLinks };
  return { plan, fabric, substitutions, reload: reloadOf(previous, plan, fabric) };
}

function noSpare(fabric: Fabric, rack: number, failed: readonly number[]): CompileError {
  const hosts = failed.map((n) => fabric.hostId(n * fabric.chipsPerNode));
  return new CompileError(
    'RACKEMU_ERR_NO_SPARE',
    `rack ${rack} has no spare node left to replace failed node(s) ${hosts.join(', ')}: ` +
      'the system fails closed rather than run on a partial plan',
    { details: { rack, failed_hosts: hosts } },
  );
}
