import { mulberry32 } from '../util/prng.js';
import type { Plan } from '../compiler/plan.js';
import type { Fabric } from '../topology/fabric.js';
import { framesOnLink } from './arm.js';
import { PERSISTENT_KINDS, type FaultKind, type FaultSpec, type RandomFaults } from './types.js';

/**
 * Draws a seeded random campaign: `count` faults of `kinds` on parts that carry traffic in the Plan,
 * fired after evenly spread requests' tokens. A fault that kills hardware (chip, host) goes only to a
 * rack that still has a spare and to a node no earlier fault has hit, so a random campaign tests
 * recovery, not the fail-closed path (a campaign meant to exhaust spares names its faults).
 */
export function drawFaults(
  r: RandomFaults['random'],
  plan: Plan,
  fabric: Fabric,
  workload: { readonly requests: number; readonly maxNewTokens: number },
  natsServers: number,
): FaultSpec[] {
  const rand = mulberry32(r.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const busy = [...plan.programs.keys()].filter((c) => {
    const p = plan.programs.get(c)!;
    return p.decode.instructions.length > 0;
  });
  busy.sort((a, b) => a - b);
  const linkList = trafficLinks(plan, fabric);
  const sparesLeft = new Map<number, number>();
  for (let n = 0; n < fabric.chipCount / fabric.chipsPerNode; n++) {
    if (fabric.isSpare(n * fabric.chipsPerNode))
      sparesLeft.set(
        fabric.rackOf(n * fabric.chipsPerNode),
        (sparesLeft.get(fabric.rackOf(n * fabric.chipsPerNode)) ?? 0) + 1,
      );
  }
  const hitNodes = new Set<number>();
  const node = (c: number) => fabric.globalNodeOf(c);
  const kinds = r.kinds.filter((k) => k !== 'nats-server-kill' || natsServers > 0);
  const out: FaultSpec[] = [];
  for (let i = 0; i < r.count; i++) {
    // over the first 80% of the requests: each fault and its recovery take a few windows, which pushes later ones back
    const request = Math.floor(((i + 1) * 0.8 * workload.requests) / (r.count + 1));
    const at = { request, token: Math.floor(rand() * Math.max(1, workload.maxNewTokens - 1)) };
    let spec: FaultSpec | null = null;
    for (let attempt = 0; attempt < 50 && spec === null; attempt++) spec = draw(pick(kinds), at);
    if (spec !== null) out.push(spec);
  }
  return out;

  function draw(kind: FaultKind, at: FaultSpec['at']): FaultSpec | null {
    const persistent = PERSISTENT_KINDS.has(kind);
    const free = (c: number) => !hitNodes.has(node(c)) && (!persistent || (sparesLeft.get(fabric.rackOf(c)) ?? 0) > 0);
    const take = (c: number) => {
      hitNodes.add(node(c));
      if (persistent) sparesLeft.set(fabric.rackOf(c), sparesLeft.get(fabric.rackOf(c))! - 1);
    };
    switch (kind) {
      case 'chip-crash':
      case 'chip-hang':
      case 'clock-skew':
      case 'sram-bitflip': {
        const chips = busy.filter(free);
        if (chips.length === 0) return null;
        const c = pick(chips);
        take(c);
        const extra = kind === 'sram-bitflip' ? { bits: 1 as const, ecc: true, seed: Math.floor(rand() * 1e6) } : {};
        return { kind, target: fabric.chipId(c), at, ...extra };
      }
      case 'host-crash': {
        const chips = busy.filter(free);
        if (chips.length === 0) return null;
        const c = pick(chips);
        take(c);
        return { kind, target: fabric.hostId(c), at };
      }
      case 'nats-server-kill':
        return { kind, target: `nats-${Math.floor(rand() * natsServers)}`, at };
      default: {
        const pairs = linkList.filter(([a, b]) => free(a) && free(b));
        if (pairs.length === 0) return null;
        const [a, b] = pick(pairs);
        take(a);
        hitNodes.add(node(b));
        return { kind, target: `${fabric.chipId(a)}-${fabric.chipId(b)}`, at };
      }
    }
  }
}

/** Physical links (chip pairs, lower index first) that some decode transfer of the Plan crosses. */
function trafficLinks(plan: Plan, fabric: Fabric): [number, number][] {
  const links = new Map<string, [number, number]>();
  for (const t of plan.steps.decode.transfers) {
    for (const l of t.links) {
      const { from, to } = fabric.links[l];
      const [a, b] = from < to ? [from, to] : [to, from];
      links.set(`${a}-${b}`, [a, b]);
    }
  }
  return [...links.values()].filter((pair) => framesOnLink(plan, fabric, pair).length > 0);
}
