import { randomBytes } from 'node:crypto';
import { planSlots, type Plan } from '../compiler/plan.js';
import type { WeightStore } from '../model/weights.js';
import {
  KIND,
  soloWindow,
  type Fidelity,
  type FrameFault,
  type RunSpec,
  type StepSamples,
  type StepWindow,
  type Violation,
  type EccEvent,
} from '../runtime/index.js';
import type { Fabric } from '../topology/fabric.js';
import { createEmbeddedFabric, type NatsAuth, type TransportConfig } from '../transport/index.js';
import { UsageError, type RunError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { chipInit, deployedChips, schedulePairs } from './chip-inits.js';
import { LocalHost, type Host, type HostChipSpec } from './host.js';
import { controlPlane, DEFAULT_JOIN_TIMEOUT_MS, type ControlPlane } from './nats-control.js';
import type { ChipOutcome } from './host-agent.js';
import { rootCause } from './root-cause.js';
import { scheduleTraffic } from './schedule-traffic.js';
import { missingChipV8Flags } from './v8-flags.js';

/**
 * The coordinator: brings a Plan up on host agents and their chips, runs requests through it and
 * assembles what the chips report. One Deployment is one running system.
 */

/** Connect timeout of each chip's NATS connection during start-up. */
export const NATS_CONNECT_TIMEOUT_MS = 120_000;

export interface DeployOptions {
  readonly fidelity: Fidelity;
  readonly transport: 'embedded' | 'nats';
  /** NATS server URL (transport nats). */
  readonly natsUrl?: string;
  /** Credentials every chip's NATS connection presents (a secret: it reaches the chips, never a log). */
  readonly natsAuth?: NatsAuth;
  /**
   * thread: host agents in this process, chips as its worker threads. process: each host agent is a
   * child process driven over NATS. remote: host agents join over NATS from anywhere (`rackemu host`).
   */
  readonly isolation: 'thread' | 'process' | 'remote';
  /** Remote isolation: the deployment's name, which host agents join (`rackemu host --deployment NAME`). */
  readonly deployment?: string;
  /** Process and remote isolation: how long to wait for every host agent to join (default 120 s). */
  readonly joinTimeoutMs?: number;
  /** Model source for host-agent processes, which load their own weights. */
  readonly model: { readonly spec: string; readonly dtype: Plan['options']['dtype'] };
  /** Weights for in-process host agents (numeric fidelity, thread isolation). */
  readonly weights: WeightStore | null;
  /** Wall-clock limit on one chip waiting for one frame. */
  readonly watchdogMs: number;
  readonly onProgress?: (ready: number, total: number) => void;
  /** Process isolation: each host-agent process serves its own GET /metrics on this address (a free port). */
  readonly hostMetricsHost?: string;
}

/** One request run alone: Deployment.generate. */
export interface GenerateRequest {
  readonly promptIds: readonly number[];
  readonly maxNewTokens: number;
  readonly faults?: readonly FrameFault[];
  /** RunSpec.lookaheadSteps. */
  readonly lookaheadSteps?: number;
  /**
   * Runs again from the prompt, up to this many times, when a run fails on the transport or a missing
   * frame (a NATS server of a cluster went away mid-run): the replay's tokens are the same (default 0).
   */
  readonly retries?: number;
}

/** What the transports carried in a run, summed over its chips (GenerateResult.messages says what each is). */
export interface MessageStats {
  readonly frames: number;
  readonly bytes: number;
  readonly transportMessages: number;
  readonly transportBytes: number;
  readonly decoded: number;
  readonly creditStalls: number;
  readonly sleeps: number;
}

/** What a window's run gave: the sampler's samples, the schedule violations seen, what moved. */
export interface WindowResult {
  readonly samples: StepSamples;
  readonly wallSeconds: number;
  readonly messages: MessageStats;
  readonly violations: Violation[];
  /** Bit flips injected into chips' SRAM in this window, as their ECC saw them (fault campaigns). */
  readonly ecc: EccEvent[];
}

export interface GenerateResult {
  /** Generated ids (numeric fidelity); null in timing fidelity, where no values exist. */
  readonly tokens: number[] | null;
  readonly generated: number;
  /** Logits from which the last token was picked (numeric fidelity). */
  readonly finalLogits: number[] | null;
  readonly virtual: {
    readonly ttftMs: number;
    readonly tpotMs: number;
    readonly tokensPerSecondPerUser: number;
    /** Per generated token, the virtual tick at which the sampler knew it. */
    readonly ticks: number[];
  };
  /**
   * perTokenMs: the whole run's wall time over the tokens it generated (prefill, start and end of
   * the run included). Chips may run several steps ahead of each other (timing look-ahead), so the
   * wall time of one token on its own is not a meaningful figure; bench/ measures the marginal cost of
   * a token from runs of two lengths.
   */
  readonly wall: { readonly startupSeconds: number; readonly runSeconds: number; readonly perTokenMs: number };
  /**
   * frames/bytes: frames and their tensor bytes; transportMessages/transportBytes: what the
   * transports moved (a corked batch or NATS bundle of frames is one message; bytes include headers);
   * decoded: frames whose header a receiving chip decoded (every frame in numeric fidelity; in timing
   * fidelity only those that were not byte for byte the frame the schedule said came next on their
   * link: faults, and frames that reached a chip before its run began).
   */
  readonly messages: MessageStats;

  readonly violations: Violation[];
  readonly chips: { readonly workers: number; readonly hosts: number; readonly used: number };
}

type DoneOutcome = Extract<ChipOutcome, { error: null }>;

export class Deployment {
  private constructor(
    private readonly plan: Plan,
    readonly fabric: Fabric,
    private readonly hosts: Host[],
    private readonly opts: DeployOptions,
    readonly startupSeconds: number,
    readonly workerCount: number,
    private readonly control: ControlPlane | null,
  ) {}

  /** Steps run so far on this deployment: the next run continues the step numbering. */
  private stepsRun = 0;

  /** The host agents, by host id (`r<rack>.n<node>`). */
  get hostIds(): string[] {
    return this.hosts.map((h) => h.hostId);
  }

  /** Host agents that serve their own GET /metrics (DeployOptions.hostMetricsHost), with its URL. */
  get hostMetrics(): { hostId: string; url: string }[] {
    return this.hosts.flatMap((h) => (h.metricsUrl === null ? [] : [{ hostId: h.hostId, url: h.metricsUrl }]));
  }

  /** Fault campaigns: host agent `hostId` dies with its chips (a thread host's workers end; a process is killed). */
  async crashHost(hostId: string): Promise<void> {
    const host = this.hosts.find((h) => h.hostId === hostId);
    if (host === undefined) {
      throw new UsageError('RACKEMU_ERR_FAULT_TARGET', `host-crash: no host agent ${hostId} in this deployment`, {
        details: { got: hostId, expected: this.hostIds.join(', ') },
      });
    }
    await host.crash();
  }

  get fidelity(): Fidelity {
    return this.opts.fidelity;
  }

  /** Index the next run's first step will have (fault targets name steps on this timeline). */
  get nextStep(): number {
    return this.stepsRun;
  }

  static async start(plan: Plan, fabric: Fabric, opts: DeployOptions): Promise<Deployment> {
    if (opts.isolation !== 'thread' && opts.transport === 'embedded') {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `${opts.isolation} isolation needs the nats transport: the embedded transport connects threads of one process only`,
        { details: { path: 'transport', expected: 'nats', got: 'embedded' } },
      );
    }
    if (opts.transport === 'nats' && !opts.natsUrl) {
      throw new UsageError('RACKEMU_ERR_GENERATE_OPTION', 'the nats transport needs a NATS server URL (natsUrl)', {
        details: { path: 'natsUrl', expected: 'a NATS url such as nats://127.0.0.1:4222' },
      });
    }
    const t0 = performance.now();
    const missing = opts.isolation !== 'thread' ? [] : missingChipV8Flags();
    if (missing.length > 0) {
      logger().warn(
        { missing },
        `node was started without ${missing.join(' ')}: runs of hundreds of chip threads may be many times slower or use more memory (see src/control/v8-flags.ts)`,
      );
    }
    const chips = deployedChips(plan, fabric);
    const runId = opts.deployment ?? `run-${randomBytes(4).toString('hex')}`;
    const embedded =
      opts.transport === 'embedded'
        ? createEmbeddedFabric(
            schedulePairs(plan, fabric),
            chips.map((c) => fabric.chipId(c)),
            { traffic: scheduleTraffic(plan, fabric, opts.fidelity) },
          )
        : null;
    const byHost = new Map<string, HostChipSpec[]>();
    for (const chip of chips) {
      const init = chipInit(plan, fabric, chip, { fidelity: opts.fidelity, watchdogMs: opts.watchdogMs });
      let transport: TransportConfig;
      if (embedded) {
        transport = embedded.endpointConfig(init.chipId);
      } else {
        // Hundreds of chips connect at once while their threads are still compiling the client:
        // on two cores that can take far longer than a lone client's default 5 s connect timeout.
        // reconnect: a chip whose server goes away (one of a cluster) reports the loss, failing that run,
        // and reconnects to another server for the next (GenerateRequest.retries)
        transport = {
          kind: 'nats',
          servers: opts.natsUrl!,
          runId,
          connectTimeoutMs: NATS_CONNECT_TIMEOUT_MS,
          reconnect: true,
        };
        if (opts.natsAuth) transport = { ...transport, auth: opts.natsAuth };
      }
      const hostId = fabric.hostId(chip);
      const list = byHost.get(hostId) ?? [];
      list.push({ init, transport });
      byHost.set(hostId, list);
    }
    const control = opts.isolation === 'thread' ? null : await controlPlane(opts, runId, byHost);
    const hosts: Host[] =
      control?.hosts ?? [...byHost].map(([hostId, list]) => new LocalHost(hostId, list, opts.weights));
    let ready = 0;
    opts.onProgress?.(0, chips.length);
    try {
      await control?.roster.waitAll(opts.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS);
      await Promise.all(hosts.map((h) => h.load(() => opts.onProgress?.(++ready, chips.length))));
    } catch (e) {
      await Promise.allSettled(hosts.map((h) => h.stop()));
      await control?.close();
      throw e;
    }
    const startup = (performance.now() - t0) / 1000;
    logger().info(
      {
        chips: chips.length,
        hosts: hosts.length,
        startup_s: startup,
        transport: opts.transport,
        isolation: opts.isolation,
      },
      'deployment ready',
    );
    return new Deployment(plan, fabric, hosts, opts, startup, chips.length, control);
  }

  /**
   * Runs a window of steps on every chip, from the next step of the deployment's timeline (the caller
   * takes `nextStep` for the window's first step; windows may be queued while earlier ones run). Throws
   * the failure's root cause (RunError) if a chip failed. `onSamples` sees the sampler's samples as
   * steps complete when the spec streams them.
   */
  async run(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<WindowResult> {
    const { window } = spec;
    if (window.firstStep !== this.stepsRun) {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `window starts at step ${window.firstStep}, the timeline is at step ${this.stepsRun}`,
        {
          details: { expected: String(this.stepsRun), got: String(window.firstStep) },
        },
      );
    }
    if (spec.lookaheadSteps !== undefined && !(Number.isSafeInteger(spec.lookaheadSteps) && spec.lookaheadSteps >= 0)) {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `lookahead must be an integer >= 0 (steps), got ${spec.lookaheadSteps}`,
        {
          details: { expected: 'integer >= 0', got: String(spec.lookaheadSteps) },
        },
      );
    }
    this.stepsRun += window.kinds.length;
    const t0 = performance.now();
    const outcomes = (await this.runOnHosts(spec, onSamples)).flat();
    const failures = outcomes.filter((o) => o.error !== null);
    if (failures.length > 0) throw rootCause(failures, outcomes);
    const done = outcomes.filter((o): o is DoneOutcome => o.error === null);
    const sum = (f: (o: DoneOutcome) => number) => done.reduce((total, o) => total + f(o), 0);
    return {
      samples: done.find((o) => o.result.samples !== null)!.result.samples!,
      wallSeconds: (performance.now() - t0) / 1000,
      messages: {
        frames: sum((o) => o.result.framesSent),
        bytes: sum((o) => o.result.bytesSent),
        transportMessages: sum((o) => o.transport.messagesSent),
        transportBytes: sum((o) => o.transport.bytesSent),
        decoded: sum((o) => o.result.framesDecoded),
        creditStalls: sum((o) => o.transport.creditStalls),
        sleeps: sum((o) => o.transport.sleeps),
      },
      violations: done.flatMap((o) => o.result.violations),
      ecc: done.flatMap((o) => o.result.ecc ?? []),
    };
  }

  /**
   * Every host's outcomes of one run. Once one host has reported a failure (or failed), the others get two
   * watchdogs to answer: a host whose control messages were lost in a NATS server's failover would
   * otherwise keep the run waiting for good; it is reported as missing (its chips' outcomes are errors).
   */
  private runOnHosts(spec: RunSpec, onSamples?: (s: StepSamples) => void): Promise<ChipOutcome[][]> {
    const graceMs = 2 * this.opts.watchdogMs;
    return new Promise((resolve, reject) => {
      const results: (ChipOutcome[] | undefined)[] = this.hosts.map(() => undefined);
      let pending = this.hosts.length;
      let timer: ReturnType<typeof setTimeout> | null = null;
      const finish = () => {
        if (timer !== null) clearTimeout(timer);
        resolve(results.map((r, i) => r ?? this.missingHost(i)));
      };
      const failing = () => {
        timer ??= setTimeout(finish, graceMs);
      };
      this.hosts.forEach((h, i) => {
        h.run(spec, onSamples).then(
          (r) => {
            results[i] = r;
            if (r.some((o) => o.error !== null)) failing();
            if (--pending === 0) finish();
          },
          (e: unknown) => {
            if (timer !== null) clearTimeout(timer);
            reject(e);
          },
        );
      });
    });
  }

  /** A host that did not answer a run in time: each of its chips failed. */
  private missingHost(i: number): ChipOutcome[] {
    const h = this.hosts[i];
    const chips = this.fabric
      ? deployedChips(this.plan, this.fabric).filter((c) => this.fabric.hostId(c) === h.hostId)
      : [];
    const message = `host agent ${h.hostId} did not answer the run within ${2 * this.opts.watchdogMs} ms of another host's failure`;
    return chips.map((c) => ({
      chipId: this.fabric.chipId(c),
      result: null,
      transport: null,
      error: { code: 'RACKEMU_ERR_HOSTS_MISSING', message, details: { host: h.hostId } },
    }));
  }

  /** Numeric fidelity: the logits of batch slot `slot` in the last step, gathered from the lm_head chips. */
  async readbackLogits(slot: number): Promise<number[]> {
    const lmChips = new Set(this.plan.layout.lmHead.map((s) => this.fabric.chipId(s.chip)));
    const full = new Float32Array(this.plan.model.vocab);
    const batch = planSlots(this.plan.options);
    for (const h of this.hosts) {
      const mine = [...lmChips].filter((c) => this.fabric.hostId(this.fabric.chipIndex(c)) === h.hostId);
      if (mine.length === 0) continue;
      for (const l of await h.readback(mine)) {
        if (l.logits === null) continue;
        const width = l.logits.length / batch;
        full.set(l.logits.subarray(slot * width, (slot + 1) * width), l.start);
      }
    }
    return Array.from(full);
  }

  /**
   * One request alone in batch slot 0, from prompt to its last new token, as one window whose virtual
   * time starts at 0 (so every run of the same request gives the same ticks and frames).
   */
  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const P = request.promptIds.length;
    const context = this.plan.options.context;
    if (P === 0 || request.maxNewTokens < 1 || P + request.maxNewTokens > context) {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `prompt of ${P} tokens plus ${request.maxNewTokens} new tokens must be >= 1 each and fit the plan's context of ${context}`,
        { details: { expected: `1 <= prompt + new <= ${context}`, got: `${P} + ${request.maxNewTokens}` } },
      );
    }
    const bad = request.promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= this.plan.model.vocab);
    if (bad !== undefined) {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `prompt id ${bad} is outside the vocabulary [0, ${this.plan.model.vocab})`,
        {
          details: { got: String(bad) },
        },
      );
    }
    const shape = { batch: planSlots(this.plan.options), prefillChunk: this.plan.options.prefillChunk };
    let window: StepWindow;
    let r: WindowResult;
    for (let attempt = 0; ; attempt++) {
      // a replay is a new window on the timeline (frames of the failed run are told apart by their steps)
      window = soloWindow(request, { firstStep: this.stepsRun, baseTick: 0 }, shape, this.opts.fidelity === 'numeric');
      try {
        r = await this.run({ window, faults: request.faults, lookaheadSteps: request.lookaheadSteps });
        break;
      } catch (e) {
        const code = (e as RunError).code;
        const replayable = code === 'RACKEMU_ERR_TRANSPORT' || code === 'RACKEMU_ERR_WATCHDOG';
        if (!replayable || attempt >= (request.retries ?? 0)) throw e;
        logger().warn(
          { code, attempt: attempt + 1 },
          `run failed (${(e as Error).message}); replaying it from the prompt`,
        );
      }
    }
    // the last prefill step yields the first new token; every decode step one more
    const first = window.kinds.lastIndexOf(KIND.prefill);
    const ticks = r.samples.ticks.slice(first);
    const ids = r.samples.ids;
    const tokens = ids === null ? null : ticks.map((_, i) => ids[(first + i) * shape.batch]);
    const hz = this.plan.topology.chip.clock_mhz * 1e6;
    const ttft = ticks[0] / hz;
    const tpot =
      ticks.length > 1
        ? (ticks[ticks.length - 1] - ticks[0]) / (ticks.length - 1) / hz
        : this.plan.steps.decode.lengthTicks / hz;
    return {
      tokens,
      generated: ticks.length,
      finalLogits: this.opts.fidelity === 'numeric' ? await this.readbackLogits(0) : null,
      virtual: { ttftMs: ttft * 1000, tpotMs: tpot * 1000, tokensPerSecondPerUser: 1 / tpot, ticks },
      wall: {
        startupSeconds: this.startupSeconds,
        runSeconds: r.wallSeconds,
        perTokenMs: (r.wallSeconds * 1000) / ticks.length,
      },
      messages: r.messages,
      violations: r.violations,
      chips: { workers: this.workerCount, hosts: this.hosts.length, used: this.plan.programs.size },
    };
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.hosts.map((h) => h.stop()));
    await this.control?.close();
  }
}
