import type { Plan } from '../compiler/plan.js';
import type { EccEvent, Violation } from '../runtime/index.js';
import type { Fabric } from '../topology/fabric.js';
import type { RunError } from '../util/errors.js';

/**
 * Detection: what failed, named as the hardware or a host would name it, from what a window reported.
 * Worker exit and missed heartbeats name a chip (a host when all its chips went at once, or its process
 * exited); checksum mismatches and missing or late frames name the link their routes share; a chip's
 * epoch check names a skewed chip; ECC names the chip and word; a lost NATS connection names the server.
 */

export type Mechanism =
  | 'worker-exit'
  | 'heartbeat'
  | 'host-exit'
  | 'checksum'
  | 'missing-frame'
  | 'late-frame'
  | 'link-status'
  | 'epoch-check'
  | 'ecc'
  | 'transport';

export interface Detection {
  readonly mechanism: Mechanism;
  /**
   * The failed part. A frame is checked end to end, so a frame that crossed several links names them
   * all (`candidates`, in route order) unless other frames narrow it to the one they share.
   */
  readonly part: {
    readonly kind: 'chip' | 'host' | 'link' | 'nats';
    readonly id: string;
    readonly candidates?: readonly string[];
  };
  /** Virtual tick of the first evidence (a frame due or late, a skewed epoch), or -1 when none is in virtual time. */
  readonly tick: number;
  readonly message: string;
}

/** The physical links (as `a-b` chip pairs) a frame of the Plan crossed, by its tensor name, source and destination. */
function routeOf(plan: Plan, fabric: Fabric, v: Pick<Violation, 'tensor' | 'src' | 'dst'>): string[] {
  for (const step of [plan.steps.decode, plan.steps.prefill]) {
    const t = step.transfers.find(
      (x) =>
        step.tensors[x.tensor].name === v.tensor && fabric.chipId(x.src) === v.src && fabric.chipId(x.dst) === v.dst,
    );
    if (t) return t.links.map((l) => pairName(fabric, fabric.links[l].from, fabric.links[l].to));
  }
  return [];
}

/** A physical link's name: its two chips, lower index first (both directions are one cable). */
export function pairName(fabric: Fabric, a: number, b: number): string {
  return a < b ? `${fabric.chipId(a)}-${fabric.chipId(b)}` : `${fabric.chipId(b)}-${fabric.chipId(a)}`;
}

/** The link every one of `vs` crossed, else the source chip they share, else the first one's route. */
function linkOrChip(plan: Plan, fabric: Fabric, vs: readonly Violation[]): Detection['part'] {
  let common: string[] | null = null;
  for (const v of vs) {
    const r = routeOf(plan, fabric, v);
    common = common === null ? r : common.filter((l) => r.includes(l));
  }
  if (common !== null && common.length > 0) return { kind: 'link', id: common.join(' | '), candidates: common };
  const srcs = new Set(vs.map((v) => v.src));
  if (srcs.size === 1) return { kind: 'chip', id: vs[0].src };
  const route = routeOf(plan, fabric, vs[0]);
  return { kind: 'link', id: route.join(' | '), candidates: route };
}

const minTick = (vs: readonly Violation[]) => vs.reduce((t, v) => Math.min(t, v.tick), Number.POSITIVE_INFINITY);

export function detectError(e: RunError, plan: Plan, fabric: Fabric): Detection {
  const d = e.details as {
    chip?: string;
    host?: string;
    server?: unknown;
    failedChips?: string[];
    violations?: Violation[];
    violation?: Violation;
  };
  const violations = d.violations ?? (d.violation ? [d.violation] : []);
  const tick = violations.length > 0 ? minTick(violations) : -1;
  const message = e.message;
  switch (e.code) {
    case 'RACKEMU_ERR_WORKER': {
      if (d.host !== undefined) return { mechanism: 'host-exit', part: { kind: 'host', id: d.host }, tick, message };
      const chips = d.failedChips ?? (d.chip ? [d.chip] : []);
      // several workers of one host gone at once: the host went down (a stray failure elsewhere aside)
      const perHost = new Map<string, number>();
      for (const c of chips)
        perHost.set(c.slice(0, c.lastIndexOf('.')), (perHost.get(c.slice(0, c.lastIndexOf('.'))) ?? 0) + 1);
      const [host, n] = [...perHost].reduce((a, b) => (b[1] > a[1] ? b : a), ['', 0]);
      if (n > 1) return { mechanism: 'host-exit', part: { kind: 'host', id: host }, tick, message };
      return { mechanism: 'worker-exit', part: { kind: 'chip', id: chips[0] ?? '?' }, tick, message };
    }
    case 'RACKEMU_ERR_CHIP_HANG':
      return { mechanism: 'heartbeat', part: { kind: 'chip', id: d.chip ?? '?' }, tick, message };
    case 'RACKEMU_ERR_ECC_UNCORRECTABLE':
      return { mechanism: 'ecc', part: { kind: 'chip', id: d.chip ?? '?' }, tick, message };
    case 'RACKEMU_ERR_TRANSPORT': {
      // transport/nats.ts names the server a connection lost as host:port (some clients add the scheme)
      const server = typeof d.server === 'string' ? d.server.replace(/^nats:\/\//, '') : 'nats';
      return { mechanism: 'transport', part: { kind: 'nats', id: server }, tick, message };
    }
    default: {
      const corrupt = violations.filter((v) => v.kind === 'corrupt');
      if (corrupt.length > 0) return { mechanism: 'checksum', part: linkOrChip(plan, fabric, corrupt), tick, message };
      // chips stalled behind a lost frame miss frames too: a frame is lost at the source only if its sender
      // was not itself waiting for a frame due earlier (then it could not have sent it)
      const missing = violations.filter((v) => v.kind === 'missing');
      const first = missing.filter((g) => !missing.some((v) => v.dst === g.src && v.tick < g.tick));
      const late = violations.filter((v) => v.kind === 'late');
      const used = first.length > 0 ? first : late;
      if (used.length > 0) {
        const part = linkOrChip(plan, fabric, used);
        return { mechanism: missing.length > 0 ? 'missing-frame' : 'late-frame', part, tick, message };
      }
      return { mechanism: 'worker-exit', part: { kind: 'chip', id: d.chip ?? '?' }, tick, message };
    }
  }
}

/** A window that completed but broke the schedule (late frames, a skewed epoch): what its violations point at. */
export function detectViolations(vs: readonly Violation[], plan: Plan, fabric: Fabric): Detection | null {
  const skew = vs.filter((v) => v.kind === 'skew');
  if (skew.length > 0) {
    return {
      mechanism: 'epoch-check',
      part: { kind: 'chip', id: skew[0].src },
      tick: minTick(skew),
      message: skew[0].message,
    };
  }
  const late = vs.filter((v) => v.kind === 'late' || v.kind === 'missing' || v.kind === 'corrupt');
  if (late.length === 0) return null;
  return {
    mechanism: 'late-frame',
    part: linkOrChip(plan, fabric, late),
    tick: minTick(late),
    message: late[0].message,
  };
}

export function detectEcc(events: readonly EccEvent[]): Detection | null {
  const e = events.find((x) => x.ecc);
  if (e === undefined) return null;
  return {
    mechanism: 'ecc',
    part: { kind: 'chip', id: e.chip },
    tick: e.tick,
    message: `${e.chip}: ECC ${e.corrected ? 'corrected' : 'detected'} ${e.bits.length} flipped bit(s) in ${e.tensor} word ${e.word}`,
  };
}
