import type { Fabric } from '../topology/fabric.js';
import type { Plan, Step } from './plan.js';

/**
 * Chrome trace (the JSON Perfetto and chrome://tracing open) of one step: process 1 has a track
 * per chip with its ops, process 2 a track per busy link with the transfers crossing it.
 * Timestamps are virtual microseconds from the step's start.
 */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  args?: Record<string, string | number>;
}

export function stepTrace(
  plan: Plan,
  fabric: Fabric,
  step: Step = plan.steps.decode,
): { traceEvents: TraceEvent[]; displayTimeUnit: 'ns' } {
  const us = (ticks: number) => ticks / plan.topology.chip.clock_mhz;
  const events: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: `chips (${step.kind} step)` } },
    { name: 'process_name', ph: 'M', pid: 2, tid: 0, args: { name: 'links' } },
  ];
  const chips = new Set<number>();
  for (const op of step.ops) {
    chips.add(op.chip);
    const k = op.kernel;
    const name = 'layer' in k ? `${k.kind} L${k.layer}` : k.kind;
    events.push({
      name,
      cat: k.kind,
      ph: 'X',
      pid: 1,
      tid: op.chip,
      ts: us(op.start),
      dur: us(op.end - op.start),
      args: {
        tensor: step.tensors[op.output].name,
        weight_bytes: op.weightBytes,
        flops: op.flops,
        start_tick: op.start,
        end_tick: op.end,
      },
    });
  }
  for (const c of chips)
    events.push({ name: 'thread_name', ph: 'M', pid: 1, tid: c, args: { name: fabric.chipId(c) } });
  const links = new Set<number>();
  for (const tr of step.transfers) {
    let offset = 0;
    for (const id of tr.links) {
      links.add(id);
      events.push({
        name: step.tensors[tr.tensor].name,
        cat: 'transfer',
        ph: 'X',
        pid: 2,
        tid: id,
        ts: us(tr.depart + offset),
        dur: us(tr.busyTicks),
        args: {
          from: fabric.chipId(tr.src),
          to: fabric.chipId(tr.dst),
          bytes: tr.bytes,
          depart_tick: tr.depart,
          arrive_tick: tr.arrive,
        },
      });
      offset += fabric.links[id].latencyTicks;
    }
  }
  for (const id of links)
    events.push({ name: 'thread_name', ph: 'M', pid: 2, tid: id, args: { name: fabric.links[id].name } });
  return { traceEvents: events, displayTimeUnit: 'ns' };
}
