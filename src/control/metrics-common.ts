import { collectDefaultMetrics, type Registry } from 'prom-client';
import type { ViolationKind } from '../runtime/index.js';

/**
 * What the coordinator's metrics (metrics.ts) and a host agent's (host-metrics.ts) share: the fixed
 * label values they create at zero, and prom-client's process metrics as both export them.
 */

export const VIOLATION_KINDS: readonly ViolationKind[] = ['late', 'missing', 'duplicate', 'corrupt', 'unexpected'];

/** prom-client default metrics that are gauges named `_total`, which promtool rejects. */
const PROMTOOL_REJECTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * prom-client's process and Node.js metrics of this process (process_cpu_seconds_total,
 * process_resident_memory_bytes, nodejs_eventloop_lag_seconds, ...), less the three gauges it names
 * `_total`: the same values stay under nodejs_active_*{type}.
 */
export function addProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of PROMTOOL_REJECTS) registry.removeSingleMetric(name);
}
