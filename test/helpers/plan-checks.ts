import { expect } from 'vitest';
import type { Plan, Step } from '../../src/compiler/plan.js';
import type { Fabric } from '../../src/topology/fabric.js';

/** Checks of a compiled step's schedule, shared by the compiler's tests. */

/** Per link, the busy windows of every transfer crossing it, in one step. */
function linkWindows(fabric: Fabric, step: Step): Map<number, [number, number][]> {
  const w = new Map<number, [number, number][]>();
  for (const tr of step.transfers) {
    let offset = 0;
    for (const id of tr.links) {
      const list = w.get(id) ?? [];
      list.push([tr.depart + offset, tr.depart + offset + tr.busyTicks]);
      w.set(id, list);
      offset += fabric.links[id].latencyTicks;
    }
  }
  return w;
}

export function checkStepInvariants(plan: Plan, fabric: Fabric, step: Step): void {
  // every transfer follows existing links from its source to its destination and takes at least latency + serialisation
  for (const tr of step.transfers) {
    let at = tr.src;
    let latency = 0;
    for (const id of tr.links) {
      const l = fabric.links[id];
      expect(l, `link ${id}`).toBeDefined();
      // a switch port is a chip's own up or down port; a mesh or global link joins two chips
      if (l.from === l.to) {
        if (l.name.endsWith(':up')) expect(l.from).toBe(at);
        else at = l.to;
      } else {
        expect(l.from).toBe(at);
        at = l.to;
      }
      latency += l.latencyTicks;
    }
    expect(at).toBe(tr.dst);
    expect(tr.arrive).toBe(tr.depart + latency + tr.busyTicks);
    expect(tr.busyTicks).toBeGreaterThanOrEqual(
      Math.ceil(tr.bytes / Math.min(...tr.links.map((id) => fabric.links[id].bytesPerTick))),
    );
  }
  // no link carries two transfers in the same tick
  for (const [id, windows] of linkWindows(fabric, step)) {
    windows.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < windows.length; i++)
      expect(windows[i][0], `link ${fabric.links[id].name}`).toBeGreaterThanOrEqual(windows[i - 1][1]);
  }
  // every op starts after its inputs are on its chip; a chip runs one op at a time
  const producedEnd = new Map<number, number>();
  for (const op of step.ops) producedEnd.set(op.output, op.end);
  const arrival = new Map<string, number>();
  for (const tr of step.transfers) {
    expect(tr.depart).toBeGreaterThanOrEqual(producedEnd.get(tr.tensor) ?? 0);
    arrival.set(`${tr.tensor}@${tr.dst}`, tr.arrive);
  }
  const lastEnd = new Map<number, number>();
  for (const op of step.ops) {
    for (const t of op.inputs) {
      const tensor = step.tensors[t];
      const ready = tensor.chip === op.chip ? (producedEnd.get(t) ?? 0) : arrival.get(`${t}@${op.chip}`);
      expect(ready, `input ${tensor.name} of op ${op.id} reaches chip ${op.chip}`).toBeDefined();
      expect(op.start).toBeGreaterThanOrEqual(ready!);
    }
    expect(op.start).toBeGreaterThanOrEqual(lastEnd.get(op.chip) ?? 0);
    expect(op.end).toBeGreaterThan(op.start);
    lastEnd.set(op.chip, op.end);
  }
  expect(step.lengthTicks).toBe(Math.max(...step.ops.map((o) => o.end)));
}

/**
 * Memory of every chip at every tick, recomputed here from the schedule: static bytes plus each
 * tensor held from its creation (op start, or transfer departure on the receiver) to its last use.
 */
export function maxMemoryOverTicks(plan: Plan, step: Step): { chip: number; bytes: number } {
  const held = new Map<string, [number, number]>();
  const hold = (t: number, chip: number, from: number, to: number) => {
    const k = `${t}@${chip}`;
    const cur = held.get(k);
    held.set(k, cur ? [Math.min(cur[0], from), Math.max(cur[1], to)] : [from, to]);
  };
  for (const op of step.ops) {
    hold(op.output, op.chip, op.start, op.end);
    for (const t of op.inputs) hold(t, op.chip, op.end, op.end);
  }
  for (const tr of step.transfers) {
    hold(tr.tensor, tr.src, tr.depart, tr.depart + tr.busyTicks);
    hold(tr.tensor, tr.dst, tr.depart, tr.arrive);
  }
  const perChip = new Map<number, { t: number; d: number }[]>();
  for (const [k, [a, b]] of held) {
    const [t, chip] = k.split('@').map(Number);
    const list = perChip.get(chip) ?? [];
    list.push({ t: a, d: step.tensors[t].bytes }, { t: b + 1, d: -step.tensors[t].bytes });
    perChip.set(chip, list);
  }
  let worst = { chip: -1, bytes: 0 };
  for (const p of plan.placement) {
    const events = (perChip.get(p.chip) ?? []).sort((x, y) => x.t - y.t || x.d - y.d);
    let cur = p.memory.weightBytes + p.memory.kvBytes;
    let peak = cur;
    for (const e of events) peak = Math.max(peak, (cur += e.d));
    if (peak > worst.bytes) worst = { chip: p.chip, bytes: peak };
  }
  return worst;
}
