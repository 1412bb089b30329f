import type { Plan } from '../compiler/plan.js';
import type { FaultRecord } from '../control/fault-campaign.js';

/**
 * A Chrome trace (Perfetto, chrome://tracing) of a fault campaign on the serving timeline, in virtual
 * microseconds: process 1 has a track per fault (the span from its injection to the system serving
 * again, its detection as an instant), process 2 the windows of steps that failed or broke the schedule.
 * Open it beside `rackemu compile --trace` (one step's ops and transfers) to see what those steps do.
 */
interface FaultTraceEvent {
  name: string;
  ph: 'X' | 'i' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  s?: 't';
  cat?: string;
  args?: Record<string, string | number | boolean>;
}

export function faultTrace(
  records: readonly FaultRecord[],
  plan: Plan,
): { traceEvents: FaultTraceEvent[]; displayTimeUnit: 'ns' } {
  const us = (ticks: number) => ticks / plan.topology.chip.clock_mhz;
  const events: FaultTraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: 1, tid: 0, args: { name: 'faults (virtual time)' } },
    { name: 'process_name', ph: 'M', pid: 2, tid: 0, args: { name: 'affected windows of steps' } },
    { name: 'thread_name', ph: 'M', pid: 2, tid: 0, args: { name: 'steps' } },
  ];
  records.forEach((f, i) => {
    if (f.injected === null) return;
    const tid = i + 1;
    events.push({ name: 'thread_name', ph: 'M', pid: 1, tid, args: { name: `${f.kind} ${f.target}` } });
    const at = us(f.injected.tick);
    events.push({
      name: `${f.kind} ${f.target}: ${f.recovered?.action ?? (f.detected ? 'detected' : 'not detected')}`,
      cat: f.kind,
      ph: 'X',
      pid: 1,
      tid,
      ts: at,
      // a fault never recovered from shows as a sliver at its injection
      dur: f.recovered ? f.recovered.virtualMs * 1000 : 1,
      args: {
        step: f.injected.step,
        tick: f.injected.tick,
        spare: f.recovered?.spare ?? '',
        reload_bytes: f.recovered?.reloadBytes ?? 0,
        note: f.note ?? '',
      },
    });
    const d = f.detected;
    if (d === null) return;
    events.push({
      name: `detected: ${d.mechanism} (${d.part.kind} ${d.part.id})`,
      ph: 'i',
      s: 't',
      pid: 1,
      tid,
      ts: d.tick >= 0 ? us(d.tick) : at,
      args: { attributed_correctly: d.attributed, message: d.message },
    });
    if (d.window !== undefined) {
      const end = d.window.firstStep + d.window.steps - 1;
      events.push({
        name: `steps ${d.window.firstStep}-${end}: ${f.kind}`,
        ph: 'X',
        pid: 2,
        tid: 0,
        ts: us(d.window.baseTick),
        dur: Math.max(1, at - us(d.window.baseTick) + (d.tick >= 0 ? us(d.tick) - at : 0)),
        args: { first_step: d.window.firstStep, steps: d.window.steps },
      });
    }
  });
  return { traceEvents: events, displayTimeUnit: 'ns' };
}
