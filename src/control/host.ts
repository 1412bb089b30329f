import { fork, type ChildProcess } from 'node:child_process';
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
import { compiledUrl } from '../util/compiled-url.js';
import { RunError } from '../util/errors.js';
import { CHIP_ENV, fromWireError, HostAgent, type ChipOutcome, type HostChip } from './host-agent.js';
import { missingChipV8Flags } from './v8-flags.js';

/**
 * The coordinator's handle on one host agent, wherever it runs: in this process (LocalHost) or as
 * a child process (RemoteHost, talking over IPC). Both load the same Programs and weights.
 */
export interface Host {
  readonly hostId: string;
  /** URL of the host agent's own GET /metrics once loaded (host-agent processes asked to serve one), else null. */
  readonly metricsUrl: string | null;
  load(onReady: (chipId: string) => void): Promise<void>;
  /** Runs a window on the host's chips; `onSamples` sees the sampler's streamed samples (RunSpec.streamTokens). */
  run(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<ChipOutcome[]>;
  readback(chipIds: readonly string[]): Promise<{ chipId: string; start: number; logits: Float32Array | null }[]>;
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
  stop(): Promise<void> {
    return this.agent.stop();
  }
}

/** Messages between the coordinator and a host-agent process (host-main.ts). */
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
  | { type: 'stop' };

export type HostToCoordinator =
  | { type: 'chip-ready'; chipId: string }
  /** `metricsUrl`: the host's GET /metrics (`http://address:port/metrics`) when the load asked for one. */
  | { type: 'loaded'; metricsUrl: string | null }
  | { type: 'samples'; samples: StepSamples }
  | { type: 'ran'; outcomes: ChipOutcome[] }
  | { type: 'logits'; logits: { chipId: string; start: number; logits: Float32Array | null }[] }
  | { type: 'stopped' }
  | { type: 'error'; error: WireError };

const HOST_MAIN = compiledUrl('./host-main.js', import.meta.url);

/** A request to a host-agent process awaiting its reply (replies come in request order). */
interface Pending {
  readonly type: HostToCoordinator['type'];
  readonly resolve: (m: HostToCoordinator) => void;
  readonly reject: (e: RunError) => void;
  readonly onSamples?: (s: StepSamples) => void;
  /** A run's window: its steps [first, end) on the timeline (samples are routed by step). */
  readonly steps?: { readonly first: number; readonly end: number };
}

export class RemoteHost implements Host {
  private child: ChildProcess | null = null;
  private readonly pending: Pending[] = [];
  private onReady: (chipId: string) => void = () => undefined;
  metricsUrl: string | null = null;

  constructor(
    readonly hostId: string,
    private readonly chips: readonly HostChipSpec[],
    private readonly model: { spec: string; dtype: WeightDtype },
    /** Address the host agent serves its own GET /metrics on (none when undefined). */
    private readonly metricsHost?: string,
  ) {}

  private request<T extends HostToCoordinator['type']>(
    msg: CoordinatorToHost,
    reply: T,
    run?: { readonly onSamples?: (s: StepSamples) => void; readonly steps: { first: number; end: number } },
  ): Promise<Extract<HostToCoordinator, { type: T }>> {
    return new Promise((resolve, reject) => {
      const r = resolve as (m: HostToCoordinator) => void;
      this.pending.push({ type: reply, resolve: r, reject, onSamples: run?.onSamples, steps: run?.steps });
      this.child!.send(msg);
    });
  }

  load(onReady: (chipId: string) => void): Promise<void> {
    this.onReady = onReady;
    const child = fork(HOST_MAIN, [this.hostId], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: CHIP_ENV,
      execArgv: [...process.execArgv, ...missingChipV8Flags()],
    });
    this.child = child;
    child.on('message', (m: HostToCoordinator) => {
      if (m.type === 'chip-ready') return this.onReady(m.chipId);
      const head = this.pending[0];
      if (!head) return;
      // the sampler may stream a later window's samples before every chip of this host finished the
      // earlier one: samples go to the run whose window holds their step
      if (m.type === 'samples') return this.runOf(m.samples.firstStep)?.onSamples?.(m.samples);
      if (m.type === 'error') {
        this.pending.shift();
        head.reject(fromWireError(m.error));
      } else if (m.type === head.type) {
        this.pending.shift();
        head.resolve(m);
      }
    });
    child.on('exit', (code, signal) => {
      const e = new RunError('RACKEMU_ERR_WORKER', `host agent ${this.hostId} exited (${signal ?? `code ${code}`})`);
      for (const p of this.pending.splice(0)) p.reject(e);
    });
    return this.request(
      {
        type: 'load',
        hostId: this.hostId,
        chips: this.chips.map((c) => ({ init: c.init, transport: c.transport })),
        model: this.model,
        metrics: this.metricsHost === undefined ? null : { host: this.metricsHost },
      },
      'loaded',
    ).then((m) => {
      this.metricsUrl = m.metricsUrl;
    });
  }

  async run(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<ChipOutcome[]> {
    const first = spec.window.firstStep;
    const steps = { first, end: first + spec.window.kinds.length };
    return (await this.request({ type: 'run', spec }, 'ran', { onSamples, steps })).outcomes;
  }

  private runOf(step: number): Pending | undefined {
    return this.pending.find((p) => p.steps !== undefined && step >= p.steps.first && step < p.steps.end);
  }

  async readback(chipIds: readonly string[]) {
    return (await this.request({ type: 'readback', chipIds: [...chipIds] }, 'logits')).logits;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    await Promise.race([
      this.request({ type: 'stop' }, 'stopped').catch(() => undefined),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    child.kill();
    await exited;
  }
}
