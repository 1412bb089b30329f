import type { Plan } from '../compiler/plan.js';
import type { Fabric } from '../topology/fabric.js';
import { UsageError } from '../util/errors.js';
import type { FaultKind, FaultSpec } from './types.js';

/**
 * Fault targets checked against the system before anything runs: the part must exist, and a fault
 * whose kind needs traffic (every kind but a host or server kill) must hit a part the Plan uses.
 */

export type Target =
  | { readonly kind: 'chip'; readonly id: string; readonly chip: number }
  | { readonly kind: 'host'; readonly id: string; readonly node: number }
  | { readonly kind: 'link'; readonly id: string; readonly chips: readonly [number, number] }
  | { readonly kind: 'nats'; readonly id: string; readonly server: number };

const CHIP_KINDS: ReadonlySet<FaultKind> = new Set(['chip-crash', 'chip-hang', 'sram-bitflip', 'clock-skew']);
const LINK_KINDS: ReadonlySet<FaultKind> = new Set(['link-down', 'link-degraded', 'frame-delay']);

function bad(where: string, message: string, got: string, expected: string): UsageError {
  return new UsageError('RACKEMU_ERR_FAULT_TARGET', `${where}: ${message}`, {
    details: { path: where, got, expected },
  });
}

/** Directed link ids of the physical link between two chips, both ways (none if they are not wired). */
export function linkIds(fabric: Fabric, a: number, b: number): number[] {
  return fabric.links.filter((l) => (l.from === a && l.to === b) || (l.from === b && l.to === a)).map((l) => l.id);
}

/** Chips with instructions in the Plan. */
function busyChips(plan: Plan): Set<number> {
  const out = new Set<number>();
  for (const [chip, p] of plan.programs)
    if (p.prefill.instructions.length + p.decode.instructions.length > 0) out.add(chip);
  return out;
}

/** Whether any transfer of the Plan crosses one of `ids`. */
export function carriesTraffic(plan: Plan, ids: readonly number[]): boolean {
  const set = new Set(ids);
  return [plan.steps.prefill, plan.steps.decode].some((s) => s.transfers.some((t) => t.links.some((l) => set.has(l))));
}

/** `where` names the fault in messages (e.g. `faults[3]`); natsServers is the NATS cluster's size (0: none). */
export function resolveTarget(
  fault: Pick<FaultSpec, 'kind' | 'target'>,
  plan: Plan,
  fabric: Fabric,
  natsServers: number,
  where: string,
): Target {
  const { kind, target } = fault;
  const chipOf = (id: string) => {
    const chip = fabric.chipIndex(id);
    if (chip < 0) throw bad(where, `${kind}: no chip ${id} in ${plan.topology.name}`, id, 'r<rack>.n<node>.c<chip>');
    return chip;
  };
  if (CHIP_KINDS.has(kind) || (kind === 'frame-corrupt' && !target.includes('-'))) {
    const chip = chipOf(target);
    if (!busyChips(plan).has(chip)) {
      throw bad(
        where,
        `${kind}: chip ${target} carries no traffic in the Plan (it holds nothing)`,
        target,
        'a chip with work',
      );
    }
    return { kind: 'chip', id: target, chip };
  }
  if (LINK_KINDS.has(kind) || kind === 'frame-corrupt') {
    const [a, b] = target.split('-');
    const chips: [number, number] = [chipOf(a ?? ''), chipOf(b ?? '')];
    const ids = linkIds(fabric, chips[0], chips[1]);
    if (ids.length === 0)
      throw bad(where, `${kind}: chips ${a} and ${b} are not wired to each other`, target, 'a physical link');
    if (!carriesTraffic(plan, ids)) {
      throw bad(
        where,
        `${kind}: link ${target} carries no traffic in the Plan`,
        target,
        'a link some transfer crosses',
      );
    }
    return { kind: 'link', id: target, chips };
  }
  if (kind === 'host-crash') {
    const chip = fabric.chipIndex(`${target}.c0`);
    if (chip < 0) throw bad(where, `host-crash: no host ${target} in ${plan.topology.name}`, target, 'r<rack>.n<node>');
    const node = fabric.globalNodeOf(chip);
    const busy = busyChips(plan);
    if (![...busy].some((c) => fabric.globalNodeOf(c) === node)) {
      throw bad(where, `host-crash: host ${target} has no chip with work in the Plan`, target, 'a host with work');
    }
    return { kind: 'host', id: target, node };
  }
  const m = /^nats-(\d+)$/.exec(target);
  const server = m ? Number(m[1]) : -1;
  if (server < 0 || server >= natsServers) {
    throw bad(
      where,
      natsServers === 0
        ? `nats-server-kill: this run has no NATS cluster (use --transport nats)`
        : `nats-server-kill: no server ${target} (the cluster has ${natsServers}: nats-0..nats-${natsServers - 1})`,
      target,
      'nats-<index>',
    );
  }
  return { kind: 'nats', id: target, server };
}
