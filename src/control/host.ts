import type { WeightDtype } from '../model/config.js';
import type { WeightStore } from '../model/weights.js';
import {
  chipWeights,
  type ChipInit,
  type ChipWeights,
  type RunSpec,
  type StepSamples,
  type WireError,
} from '../runtime/index.js';
import type { TransportConfig } from '../transport/index.js';
import type { Kernel } from '../compiler/plan.js';
import { HostAgent, type ChipOutcome, type HostChip } from './host-agent.js';

/**
 * The coordinator's handle on one host agent, wherever it runs: in this process (LocalHost), or
 * driven over NATS as a child process or from another machine (NatsHost, nats-host.ts). All load the
 * same Programs and weights.
 */
export interface Host {
  readonly hostId: string;
  /** URL of the host agent's own GET /metrics once loaded (host-agent processes asked to serve one), else null. */
  readonly metricsUrl: string | null;
  load(onReady: (chipId: string) => void): Promise<void>;
  /** Runs a window on the host's chips; `onSamples` sees the sampler's streamed samples (RunSpec.streamTokens). */
  run(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<ChipOutcome[]>;
  readback(chipIds: readonly string[]): Promise<{ chipId: string; start: number; logits: Float32Array | null }[]>;
  /** Fault campaigns: the host agent dies with its chips, at once and uncleanly. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

export interface HostChipSpec {
  readonly init: ChipInit;
  readonly transport: TransportConfig;
}

/** The weight slices a chip's Program needs (none in timing fidelity). */
export function weightsFor(init: ChipInit, store: WeightStore | null): ChipWeights {
  if (init.fidelity === 'timing' || store === null) return {};
  const kernels: Kernel[] = [];
  for (const kind of ['prefill', 'decode'] as const)
    for (const i of init.program[kind].instructions) if (i.kind === 'compute') kernels.push(i.kernel);
  return chipWeights(init.model, kernels, store);
}

export class LocalHost implements Host {
  readonly metricsUrl = null;
  private readonly agent: HostAgent;
  constructor(
    readonly hostId: string,
    private readonly chips: readonly HostChipSpec[],
    private readonly store: WeightStore | null,
  ) {
    this.agent = new HostAgent(hostId);
  }
  load(onReady: (chipId: string) => void): Promise<void> {
    const chips: HostChip[] = this.chips.map((c) => ({ ...c, weights: weightsFor(c.init, this.store) }));
    return this.agent.load(chips, onReady);
  }
  run(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<ChipOutcome[]> {
    return this.agent.run(spec, onSamples);
  }
  readback(chipIds: readonly string[]) {
    return this.agent.readback(chipIds);
  }
  crash(): Promise<void> {
    return this.agent.crash();
  }
  stop(): Promise<void> {
    return this.agent.stop();
  }
}

/** Messages between the coordinator and a host agent over NATS (control-channel.ts, nats-host.ts, host-service.ts). */
export type CoordinatorToHost =
  | {
      type: 'load';
      hostId: string;
      chips: { init: ChipInit; transport: TransportConfig }[];
      model: { spec: string; dtype: WeightDtype };
      /** Serve the host's own GET /metrics on this address (a free port), or not (null). */
      metrics: { host: string } | null;
    }
  | { type: 'run'; spec: RunSpec }
  | { type: 'readback'; chipIds: string[] }
  | { type: 'stop' }
  /**
   * Every second once the host joined: a host agent that hears nothing for long knows its coordinator is
   * gone. `acked`: the coordinator has the replies of every request up to this id (control-link.ts).
   */
  | { type: 'heartbeat'; acked: number };

export type HostToCoordinator =
  | { type: 'chip-ready'; chipId: string }
  /** `metricsUrl`: the host's GET /metrics (`http://address:port/metrics`) when the load asked for one. */
  | { type: 'loaded'; metricsUrl: string | null }
  | { type: 'samples'; samples: StepSamples }
  | { type: 'ran'; outcomes: ChipOutcome[] }
  | { type: 'logits'; logits: { chipId: string; start: number; logits: Float32Array | null }[] }
  | { type: 'stopped' }
  | { type: 'error'; error: WireError }
  /**
   * Every second while the host agent serves: silence means it is gone (NatsHost). `seen`, `kept`: the
   * last request id it took and the replies it keeps (control-link.ts HostBeat).
   */
  | { type: 'heartbeat'; seen: number; kept: number[] };
