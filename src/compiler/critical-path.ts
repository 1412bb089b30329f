import type { Step } from './plan.js';

/**
 * One stretch of a step's critical path: an op computing on its chip, or a tensor on its way from the
 * chip that made it to the chip whose op waits for it (from the producer's end, or the transfer's
 * departure when no op of the step produced it). Ticks from the step's start.
 */
export type CriticalSegment =
  | { readonly kind: 'op'; readonly chip: number; readonly op: number; readonly start: number; readonly end: number }
  | {
      readonly kind: 'transfer';
      readonly src: number;
      readonly dst: number;
      readonly transfer: number;
      readonly start: number;
      readonly end: number;
    };

/**
 * The step's critical path, in time order: walked back from its last op, each op's latest input (a
 * transfer's arrival, a local producer's end) or the op before it on its chip, whichever ended later.
 */
export function criticalPath(step: Step): CriticalSegment[] {
  const producer = new Map<number, number>();
  for (const op of step.ops) producer.set(op.output, op.id);
  const arrival = new Map<string, number>();
  for (const tr of step.transfers) arrival.set(`${tr.tensor}@${tr.dst}`, tr.id);
  const prevOnChip = new Map<number, number>();
  const lastOnChip = new Map<number, number>();
  for (const op of step.ops) {
    const p = lastOnChip.get(op.chip);
    if (p !== undefined) prevOnChip.set(op.id, p);
    lastOnChip.set(op.chip, op.id);
  }
  const path: CriticalSegment[] = [];
  let opId: number | undefined = step.ops[step.ops.length - 1]?.id;
  while (opId !== undefined) {
    const op = step.ops[opId];
    path.push({ kind: 'op', chip: op.chip, op: op.id, start: op.start, end: op.end });
    let best = -1;
    let next: number | undefined;
    let viaTransfer = -1;
    for (const t of op.inputs) {
      const tr = arrival.get(`${t}@${op.chip}`);
      const made = producer.get(t);
      // a tensor no op produces is the step's input (token ids), ready from the step's start
      const at = tr !== undefined ? step.transfers[tr].arrive : made !== undefined ? step.ops[made].end : 0;
      if (at > best) {
        best = at;
        next = producer.get(t);
        viaTransfer = tr ?? -1;
      }
    }
    const prev = prevOnChip.get(op.id);
    if (prev !== undefined && step.ops[prev].end > best) {
      next = prev;
    } else if (viaTransfer >= 0) {
      const tr = step.transfers[viaTransfer];
      const start = next !== undefined ? step.ops[next].end : tr.depart;
      path.push({ kind: 'transfer', src: tr.src, dst: tr.dst, transfer: tr.id, start, end: tr.arrive });
    }
    opId = next;
  }
  return path.reverse();
}
