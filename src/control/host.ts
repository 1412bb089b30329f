import { fork, type ChildProcess } from 'node:child_process';
import type { WeightDtype } from '../model/config.js';
import type { WeightStore } from '../model/weights.js';
import { type ChipInit, chipWeights, type ChipWeights, type WireError, type RunSpec } from '../runtime/index.js';
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
  load(onReady: (chipId: string) => void): Promise<void>;
  run(spec: RunSpec): Promise<ChipOutcome[]>;
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
  run(spec: RunSpec): Promise<ChipOutcome[]> {
    return this.agent.run(spec);
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
    }
  | { type: 'run'; spec: RunSpec }
  | { type: 'readback'; chipIds: string[] }
  | { type: 'stop' };

export type HostToCoordinator =
  | { type: 'chip-ready'; chipId: string }
  | { type: 'loaded' }
  | { type: 'ran'; outcomes: ChipOutcome[] }
  | { type: 'logits'; logits: { chipId: string; start: number; logits: Float32Array | null }[] }
  | { type: 'stopped' }
  | { type: 'error'; error: WireError };

const HOST_MAIN = compiledUrl('./host-main.js', import.meta.url);

export class RemoteHost implements Host {
  private child: ChildProcess | null = null;
  private pending: {
    type: HostToCoordinator['type'];
    resolve: (m: HostToCoordinator) => void;
    reject: (e: RunError) => void;
  } | null = null;
  private onReady: (chipId: string) => void = () => undefined;

  constructor(
    readonly hostId: string,
    private readonly chips: readonly HostChipSpec[],
    private readonly model: { spec: string; dtype: WeightDtype },
  ) {}

  private request<T extends HostToCoordinator['type']>(
    msg: CoordinatorToHost,
    reply: T,
  ): Promise<Extract<HostToCoordinator, { type: T }>> {
    return new Promise((resolve, reject) => {
      this.pending = { type: reply, resolve: resolve as (m: HostToCoordinator) => void, reject };
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
      const p = this.pending;
      if (!p) return;
      if (m.type === 'error') {
        this.pending = null;
        p.reject(fromWireError(m.error));
      } else if (m.type === p.type) {
        this.pending = null;
        p.resolve(m);
      }
    });
    child.on('exit', (code, signal) => {
      const p = this.pending;
      this.pending = null;
      p?.reject(new RunError('RACKEMU_ERR_WORKER', `host agent ${this.hostId} exited (${signal ?? `code ${code}`})`));
    });
    return this.request(
      {
        type: 'load',
        hostId: this.hostId,
        chips: this.chips.map((c) => ({ init: c.init, transport: c.transport })),
        model: this.model,
      },
      'loaded',
    ).then(() => undefined);
  }

  async run(spec: RunSpec): Promise<ChipOutcome[]> {
    return (await this.request({ type: 'run', spec }, 'ran')).outcomes;
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
