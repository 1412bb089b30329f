import { fork, type ChildProcess } from 'node:child_process';
import type { WeightDtype } from '../model/config.js';
import type { RunSpec, StepSamples } from '../runtime/index.js';
import type { NatsAuth, NatsBus } from '../transport/index.js';
import { compiledUrl } from '../util/compiled-url.js';
import { RunError, UsageError } from '../util/errors.js';
import { logger } from '../util/log.js';
import {
  ControlReassembler,
  coordSubject,
  ControlSender,
  hostSubject,
  type ControlEnvelope,
} from './control-channel.js';
import { RequestLog } from './control-link.js';
import { SilenceClock } from './silence.js';
import { CHIP_ENV, fromWireError, type ChipOutcome } from './host-agent.js';
import type { CoordinatorToHost, Host, HostChipSpec, HostToCoordinator } from './host.js';
import { missingChipV8Flags } from './v8-flags.js';

/** A request to a host agent awaiting its reply (control-link.ts: matched by request id). */
interface Pending {
  readonly rid: number;
  readonly type: HostToCoordinator['type'];
  readonly resolve: (m: HostToCoordinator) => void;
  readonly reject: (e: RunError) => void;
  readonly onSamples?: (s: StepSamples) => void;
  /** A run's window: its steps [first, end) on the timeline (samples are routed by step). */
  readonly steps?: { readonly first: number; readonly end: number };
}

/** A host agent that has sent nothing (replies, samples, heartbeats every second) for this long is gone. */
export const HOST_SILENCE_MS = 15_000;

const HOST_MAIN = compiledUrl('./host-main.js', import.meta.url);

export interface NatsHostOptions {
  readonly bus: NatsBus;
  readonly deployment: string;
  readonly model: { readonly spec: string; readonly dtype: WeightDtype };
  /** Address the host agent serves its own GET /metrics on (none when undefined). */
  readonly metricsHost?: string;
  /** Start the host agent as this process's child (--isolation process); else it joins from anywhere (remote). */
  readonly spawn?: { readonly servers: string; readonly auth?: NatsAuth };
}

/**
 * The coordinator's handle on a host agent that it drives over NATS (control-channel.ts): one that
 * joined from any machine (`rackemu host`, --isolation remote) or its own child process (--isolation
 * process). Both speak the same messages. A host that stops answering (no message or heartbeat for
 * HOST_SILENCE_MS) or whose process exits fails what waits on it with a coded error.
 */
export class NatsHost implements Host {
  private readonly pending: Pending[] = [];
  private readonly requests = new RequestLog<CoordinatorToHost>();
  private readonly reassembler = new ControlReassembler();
  private readonly sender: ControlSender<CoordinatorToHost>;
  private onReady: (chipId: string) => void = () => undefined;
  private child: ChildProcess | null = null;
  private readonly silence = new SilenceClock(1000);
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private beat: ReturnType<typeof setInterval> | null = null;
  private unsubscribe: (() => void) | null = null;
  private joinedResolve: () => void = () => undefined;
  /** Resolves when the host agent has announced itself. */
  readonly joined = new Promise<void>((r) => (this.joinedResolve = r));
  metricsUrl: string | null = null;

  constructor(
    readonly hostId: string,
    private readonly chips: readonly HostChipSpec[],
    private readonly o: NatsHostOptions,
  ) {
    this.sender = new ControlSender(o.bus, hostSubject(o.deployment, hostId));
    this.unsubscribe = o.bus.subscribe(coordSubject(o.deployment, hostId), (data) => this.onData(data));
  }

  /** The host agent announced itself (HostRoster saw its join). */
  markJoined(): void {
    this.silence.heard();
    this.joinedResolve();
    if (this.beat !== null) return;
    // the host agent watches for its coordinator's silence as the coordinator watches for the host's
    this.beat = setInterval(() => this.post(0, { type: 'heartbeat', acked: this.requests.acked }), 1000);
    this.beat.unref();
  }

  /** Sends `m` as request `rid` (0: a heartbeat, which is never sent again). */
  private post(rid: number, m: CoordinatorToHost): void {
    // debug: which request each host agent was sent (a control plane that stalls shows where)
    if (rid !== 0) logger().debug({ host: this.hostId, type: m.type, rid }, 'control request sent');
    this.sender.post(rid, m);
  }

  /** --isolation process: start the host agent as a child process that joins like any other. */
  spawn(): void {
    const s = this.o.spawn;
    if (s === undefined) return;
    const args = ['--nats', s.servers, '--deployment', this.o.deployment, '--host-id', this.hostId];
    const child = fork(HOST_MAIN, args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // the credentials travel in the child's own environment, never on its command line
      env: { ...CHIP_ENV, RACKEMU_HOST_NATS_AUTH: s.auth === undefined ? '' : JSON.stringify(s.auth) },
      execArgv: [...process.execArgv, ...missingChipV8Flags()],
    });
    this.child = child;
    child.on('exit', (code, signal) => this.fail(`host agent ${this.hostId} exited (${signal ?? `code ${code}`})`));
  }

  private onData(data: Uint8Array): void {
    let envelope: ControlEnvelope<HostToCoordinator> | undefined;
    try {
      envelope = this.reassembler.push(data) as ControlEnvelope<HostToCoordinator> | undefined;
    } catch (e) {
      this.fail((e as Error).message);
      return;
    }
    if (envelope === undefined) return;
    const { rid, m } = envelope;
    this.silence.heard();
    if (m.type === 'heartbeat') {
      // what the beat shows lost on the way (a request the host never took, a reply that never came)
      for (const r of this.requests.due(m, Date.now())) {
        logger().warn({ host: this.hostId, type: r.msg.type, rid: r.rid }, 'control request sent again');
        this.post(r.rid, r.msg);
      }
      return;
    }
    if (m.type === 'chip-ready') return this.onReady(m.chipId);
    // the sampler may stream a later window's samples before every chip of this host finished the
    // earlier one: samples go to the run whose window holds their step
    if (m.type === 'samples') return this.runOf(m.samples.firstStep)?.onSamples?.(m.samples);
    logger().debug({ host: this.hostId, type: m.type, rid }, 'control reply');
    // a reply sent again that had arrived after all, or one to a request that already failed: dropped
    if (!this.requests.settle(rid)) return;
    const i = this.pending.findIndex((p) => p.rid === rid);
    if (i < 0) return;
    const [p] = this.pending.splice(i, 1);
    if (m.type === 'error') p.reject(fromWireError(m.error));
    else if (m.type === p.type) p.resolve(m);
    else p.reject(new RunError('RACKEMU_ERR_TRANSPORT', `host agent ${this.hostId} answered ${p.type} with ${m.type}`));
  }

  private fail(why: string): void {
    const e = new RunError('RACKEMU_ERR_WORKER', why, { details: { host: this.hostId } });
    this.requests.clear();
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  private request<T extends HostToCoordinator['type']>(
    msg: CoordinatorToHost,
    reply: T,
    run?: { readonly onSamples?: (s: StepSamples) => void; readonly steps: { first: number; end: number } },
  ): Promise<Extract<HostToCoordinator, { type: T }>> {
    return new Promise((resolve, reject) => {
      const r = resolve as (m: HostToCoordinator) => void;
      if (this.pending.length === 0) this.silence.heard();
      const rid = this.requests.send(msg, Date.now());
      this.pending.push({ rid, type: reply, resolve: r, reject, onSamples: run?.onSamples, steps: run?.steps });
      this.post(rid, msg);
    });
  }

  async load(onReady: (chipId: string) => void): Promise<void> {
    this.onReady = onReady;
    await this.joined;
    this.watchdog = setInterval(() => {
      const silent = this.silence.check();
      if (this.pending.length > 0 && silent > HOST_SILENCE_MS) {
        this.fail(`host agent ${this.hostId} stopped answering: nothing heard for ${Math.round(silent / 1000)} s`);
      }
    }, 1000);
    this.watchdog.unref();
    const m = await this.request(
      {
        type: 'load',
        hostId: this.hostId,
        chips: this.chips.map((c) => ({ init: c.init, transport: c.transport })),
        model: this.o.model,
        metrics: this.o.metricsHost === undefined ? null : { host: this.o.metricsHost },
      },
      'loaded',
    );
    this.metricsUrl = m.metricsUrl;
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

  /** Process isolation: SIGKILL to the host agent's process (one that joined from elsewhere cannot be killed). */
  async crash(): Promise<void> {
    if (this.child === null) {
      throw new UsageError(
        'RACKEMU_ERR_FAULT',
        `host-crash: host agent ${this.hostId} joined from elsewhere (--isolation remote); this process cannot kill it`,
        { details: { host: this.hostId, expected: 'isolation thread or process' } },
      );
    }
    const child = this.child;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    if (this.watchdog !== null) clearInterval(this.watchdog);
    if (this.beat !== null) clearInterval(this.beat);
    const child = this.child;
    const exited = child && child.exitCode === null ? new Promise((r) => child.once('exit', r)) : null;
    await Promise.race([
      this.request({ type: 'stop' }, 'stopped').catch(() => undefined),
      new Promise((r) => setTimeout(r, 5000)),
    ]);
    this.unsubscribe?.();
    if (exited) {
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child!.exitCode === null) child!.kill();
    }
  }
}
