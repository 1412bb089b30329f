import type { EngineObserver } from './engine-types.js';
import type { FaultObserver } from './metrics-faults.js';

/** Every method of EngineObserver: the fan-out below forwards these. */
const ENGINE_EVENTS = [
  'requestQueued',
  'requestAdmitted',
  'requestFinished',
  'requestFailed',
  'setRequests',
  'stepRan',
  'setKvCache',
  'setPacingLag',
  'windowRan',
  'addHostLoad',
  'hostCpu',
] as const satisfies readonly (keyof EngineObserver)[];

type AnyMethod = (...args: unknown[]) => void;

/**
 * One observer that tells each of `observers` what the engine and its fault campaign report, in the
 * order given (the Prometheus metrics and the rack view see the same calls).
 */
export function fanOut(...observers: (EngineObserver & Partial<FaultObserver>)[]): EngineObserver & FaultObserver {
  const out: Record<string, AnyMethod> = {};
  for (const name of [...ENGINE_EVENTS, 'faultInjected', 'faultDetected', 'faultRecovered'] as const) {
    const targets = observers.filter((o) => typeof o[name] === 'function');
    out[name] = (...args) => {
      for (const o of targets) (o[name] as AnyMethod).apply(o, args);
    };
  }
  return out as unknown as EngineObserver & FaultObserver;
}
