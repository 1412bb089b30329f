import { Counter, Histogram, type Registry } from 'prom-client';
import { FAULT_KINDS, type FaultKind } from '../faults/types.js';
import { TIME_BUCKETS } from './metrics-requests.js';

/** Where and when a fault was injected: its target's id, the virtual tick of the step that carried it. */
export interface FaultInjectedAt {
  readonly target: string;
  readonly tick: number;
}

/** What detected it, and the part it named (`chip` r0.n1.c2, `host` r0.n1, `link` a-b, `nats` host:port). */
export interface FaultDetectedAt {
  readonly mechanism: string;
  readonly part: { readonly kind: string; readonly id: string };
  /** Virtual tick of the detection, or null when the detector has none. */
  readonly tick: number | null;
}

/** How the deployment recovered: the action, the spare node that took over, the virtual pause. */
export interface FaultRecoveredAt {
  readonly action: string;
  readonly spare: string | null;
  readonly virtualMs: number;
}

/**
 * What a fault campaign reports as it goes (FaultCampaign's observer; FaultMetrics counts by kind, the
 * rack view also reads where each happened).
 */
export interface FaultObserver {
  faultInjected(kind: FaultKind, at?: FaultInjectedAt): void;
  faultDetected(kind: FaultKind, at?: FaultDetectedAt): void;
  /** Wall seconds from its detection to the deployment serving again. */
  faultRecovered(kind: FaultKind, wallSeconds: number, at?: FaultRecoveredAt): void;
}

/**
 * The fault families of docs/metrics.md ("Fault families"), which the Faults dashboard and its
 * annotations read: counters by fault kind (FAULT_KINDS, every one present from the start at 0) and
 * the recovery time histogram.
 */
export class FaultMetrics implements FaultObserver {
  private readonly injected: Counter<'kind'>;
  private readonly detected: Counter<'kind'>;
  private readonly recovered: Counter<'kind'>;
  private readonly recovery: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    const byKind = (name: string, help: string) => new Counter({ name, help, labelNames: ['kind'], registers });
    this.injected = byKind(
      'rackemu_faults_injected_total',
      'Faults injected (a chip, link, host or server made to fail), by kind.',
    );
    this.detected = byKind('rackemu_faults_detected_total', 'Faults the deployment detected, by kind.');
    this.recovered = byKind('rackemu_faults_recovered_total', 'Faults the deployment recovered from, by kind.');
    for (const kind of FAULT_KINDS) for (const c of [this.injected, this.detected, this.recovered]) c.inc({ kind }, 0);
    this.recovery = new Histogram({
      name: 'rackemu_recovery_seconds',
      help: 'Wall seconds from a fault detected to the deployment serving again.',
      buckets: [...TIME_BUCKETS],
      registers,
    });
  }

  faultInjected(kind: FaultKind): void {
    this.injected.inc({ kind });
  }

  faultDetected(kind: FaultKind): void {
    this.detected.inc({ kind });
  }

  faultRecovered(kind: FaultKind, wallSeconds: number): void {
    this.recovered.inc({ kind });
    this.recovery.observe(wallSeconds);
  }
}
