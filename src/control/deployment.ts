import { randomBytes } from 'node:crypto';
import type { Plan } from '../compiler/plan.js';
import type { WeightStore } from '../model/weights.js';
import { type Violation, DEFAULT_LOOKAHEAD_STEPS, type Fidelity, type RunSpec } from '../runtime/index.js';
import { frameTemplate } from '../runtime/timing-receiver.js';
import type { Fabric } from '../topology/fabric.js';
import { createEmbeddedFabric, type PairTraffic, type TransportConfig } from '../transport/index.js';
import { RunError, UsageError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { chipInit, deployedChips, schedulePairs } from './chip-inits.js';
import { LocalHost, RemoteHost, type Host, type HostChipSpec } from './host.js';
import { fromWireError, type ChipOutcome } from './host-agent.js';
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
  readonly isolation: 'thread' | 'process';
  /** Model source for host-agent processes, which load their own weights. */
  readonly model: { readonly spec: string; readonly dtype: Plan['options']['dtype'] };
  /** Weights for in-process host agents (numeric fidelity, thread isolation). */
  readonly weights: WeightStore | null;
  /** Wall-clock limit on one chip waiting for one frame. */
  readonly watchdogMs: number;
  readonly onProgress?: (ready: number, total: number) => void;
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
  readonly messages: {
    readonly frames: number;
    readonly bytes: number;
    readonly transportMessages: number;
    readonly transportBytes: number;
    readonly decoded: number;
    readonly creditStalls: number;
    readonly sleeps: number;
  };
  readonly violations: Violation[];
  readonly chips: { readonly workers: number; readonly hosts: number; readonly used: number };
}

type DoneOutcome = Extract<ChipOutcome, { error: null }>;

export class Deployment {
  private constructor(
    private readonly plan: Plan,
    private readonly fabric: Fabric,
    private readonly hosts: Host[],
    private readonly opts: DeployOptions,
    readonly startupSeconds: number,
    readonly workerCount: number,
  ) {}

  /** Steps run so far on this deployment: the next run continues the step numbering. */
  private stepsRun = 0;

  /** Index the next run's first step will have (fault targets name steps on this timeline). */
  get nextStep(): number {
    return this.stepsRun;
  }

  static async start(plan: Plan, fabric: Fabric, opts: DeployOptions): Promise<Deployment> {
    if (opts.isolation === 'process' && opts.transport === 'embedded') {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        'process isolation needs the nats transport: the embedded transport connects threads of one process only',
        { details: { path: 'transport', expected: 'nats', got: 'embedded' } },
      );
    }
    if (opts.transport === 'nats' && !opts.natsUrl) {
      throw new UsageError('RACKEMU_ERR_GENERATE_OPTION', 'the nats transport needs a NATS server URL (natsUrl)', {
        details: { path: 'natsUrl', expected: 'a NATS url such as nats://127.0.0.1:4222' },
      });
    }
    const t0 = performance.now();
    const missing = opts.isolation === 'process' ? [] : missingChipV8Flags();
    if (missing.length > 0) {
      logger().warn(
        { missing },
        `node was started without ${missing.join(' ')}: runs of hundreds of chip threads may be many times slower or use more memory (see src/control/v8-flags.ts)`,
      );
    }
    const chips = deployedChips(plan, fabric);
    const runId = `run-${randomBytes(4).toString('hex')}`;
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
        transport = { kind: 'nats', servers: opts.natsUrl!, runId, connectTimeoutMs: NATS_CONNECT_TIMEOUT_MS };
      }
      const hostId = fabric.hostId(chip);
      const list = byHost.get(hostId) ?? [];
      list.push({ init, transport });
      byHost.set(hostId, list);
    }
    const hosts: Host[] = [...byHost.entries()].map(([hostId, list]) =>
      opts.isolation === 'process'
        ? new RemoteHost(hostId, list, opts.model)
        : new LocalHost(hostId, list, opts.weights),
    );
    let ready = 0;
    opts.onProgress?.(0, chips.length);
    try {
      await Promise.all(hosts.map((h) => h.load(() => opts.onProgress?.(++ready, chips.length))));
    } catch (e) {
      await Promise.allSettled(hosts.map((h) => h.stop()));
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
    return new Deployment(plan, fabric, hosts, opts, startup, chips.length);
  }

  async generate(spec: RunSpec): Promise<GenerateResult> {
    const P = spec.promptIds.length;
    if (P === 0 || spec.maxNewTokens < 1 || P + spec.maxNewTokens > this.plan.options.context) {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `prompt of ${P} tokens plus ${spec.maxNewTokens} new tokens must be >= 1 each and fit the plan's context of ${this.plan.options.context}`,
        {
          details: {
            expected: `1 <= prompt + new <= ${this.plan.options.context}`,
            got: `${P} + ${spec.maxNewTokens}`,
          },
        },
      );
    }
    const bad = spec.promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= this.plan.model.vocab);
    if (bad !== undefined) {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `prompt id ${bad} is outside the vocabulary [0, ${this.plan.model.vocab})`,
        { details: { got: String(bad) } },
      );
    }
    if (spec.lookaheadSteps !== undefined && !(Number.isSafeInteger(spec.lookaheadSteps) && spec.lookaheadSteps >= 0)) {
      throw new UsageError(
        'RACKEMU_ERR_GENERATE_OPTION',
        `lookahead must be an integer >= 0 (steps), got ${spec.lookaheadSteps}`,
        { details: { expected: 'integer >= 0', got: String(spec.lookaheadSteps) } },
      );
    }
    const t0 = performance.now();
    const run: RunSpec = { ...spec, stepOffset: this.stepsRun };
    this.stepsRun += Math.ceil(P / this.plan.options.prefillChunk) + spec.maxNewTokens - 1;
    const outcomes = (await Promise.all(this.hosts.map((h) => h.run(run)))).flat();
    const failures = outcomes.filter((o) => o.error !== null);
    if (failures.length > 0) throw rootCause(failures, outcomes);
    const done = outcomes.filter((o): o is DoneOutcome => o.error === null);
    const runSeconds = (performance.now() - t0) / 1000;
    const sampler = done.find((o) => o.result.tokenTicks !== null)!.result;
    const ticks = sampler.tokenTicks!;
    const hz = this.plan.topology.chip.clock_mhz * 1e6;
    const ttft = ticks[0] / hz;
    const tpot =
      ticks.length > 1
        ? (ticks[ticks.length - 1] - ticks[0]) / (ticks.length - 1) / hz
        : this.plan.steps.decode.lengthTicks / hz;
    const perTokenWall = (runSeconds * 1000) / ticks.length;
    let finalLogits: number[] | null = null;
    if (this.opts.fidelity === 'numeric') {
      const lmChips = new Set(this.plan.layout.lmHead.map((s) => this.fabric.chipId(s.chip)));
      const full = new Float32Array(this.plan.model.vocab);
      for (const h of this.hosts) {
        const mine = done.filter(
          (o) => lmChips.has(o.chipId) && this.fabric.hostId(this.fabric.chipIndex(o.chipId)) === h.hostId,
        );
        if (mine.length === 0) continue;
        for (const l of await h.readback(mine.map((o) => o.chipId))) if (l.logits) full.set(l.logits, l.start);
      }
      finalLogits = Array.from(full);
    }
    const sum = (f: (o: DoneOutcome) => number) => done.reduce((total, o) => total + f(o), 0);
    return {
      tokens: sampler.tokens,
      generated: ticks.length,
      finalLogits,
      virtual: { ttftMs: ttft * 1000, tpotMs: tpot * 1000, tokensPerSecondPerUser: 1 / tpot, ticks },
      wall: { startupSeconds: this.startupSeconds, runSeconds, perTokenMs: perTokenWall },
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
      chips: { workers: this.workerCount, hosts: this.hosts.length, used: this.plan.programs.size },
    };
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.hosts.map((h) => h.stop()));
  }
}

/**
 * One failed run, many failed chips: once a frame goes missing, every chip downstream of it stalls
 * and its watchdog fires too. The root cause is a failure that is not a stall (a corrupt frame, a
 * crashed worker), else the missing frame that was due earliest in virtual time.
 */
function rootCause(failures: ChipOutcome[], all: ChipOutcome[]): RunError {
  const dueTick = (o: ChipOutcome) => (o.error?.details.violation as Violation | undefined)?.tick ?? -1;
  const notStall = failures.filter((o) => o.error?.code !== 'RACKEMU_ERR_WATCHDOG');
  const root = notStall[0] ?? failures.reduce((a, b) => (dueTick(b) < dueTick(a) ? b : a));
  const others = failures.length - 1;
  const e = root.error!;
  const suffix = others > 0 ? ` (${others} other chip(s) stalled behind it)` : '';
  const violations = [
    ...failures
      .map((o) => o.error?.details.violation as Violation | undefined)
      .filter((v): v is Violation => v !== undefined),
    ...all.flatMap((o) => o.result?.violations ?? []),
  ];
  return new RunError(fromWireError(e).code, `${e.message}${suffix}`, {
    details: { ...e.details, chip: root.chipId, violations },
  });
}

/**
 * What the schedule sends on each chip pair per step, for the embedded transport to size its rings:
 * each frame's largest encoded size. Numeric: float32 payloads (4 bytes an element) plus a header
 * allowance, sent one by one. Timing: exact sizes (templates) with integers at their widest, sent as
 * a bundle per look-ahead window of the default look-ahead (rings are sized when the deployment
 * starts, before a run can ask for another look-ahead).
 */
function scheduleTraffic(plan: Plan, fabric: Fabric, fidelity: Fidelity): PairTraffic[] {
  const lookahead = fidelity === 'timing' ? DEFAULT_LOOKAHEAD_STEPS : undefined;
  const traffic: PairTraffic[] = [];
  for (const step of [plan.steps.prefill, plan.steps.decode]) {
    const perPair = new Map<string, { src: string; dst: string; frameBytes: number[] }>();
    for (const tr of step.transfers) {
      const t = step.tensors[tr.tensor];
      const src = fabric.chipId(tr.src);
      const dst = fabric.chipId(tr.dst);
      const key = `${src}>${dst}`;
      let pair = perPair.get(key);
      if (pair === undefined) perPair.set(key, (pair = { src, dst, frameBytes: [] }));
      pair.frameBytes.push(
        fidelity === 'numeric'
          ? t.rows * (t.dtype === 'argmax' ? 2 : t.cols) * 4 + FRAME_HEADER_ALLOWANCE
          : frameTemplate(t, src, dst, 'none').sizeBound(WIDEST_INT, WIDEST_INT, WIDEST_INT),
      );
    }
    for (const pair of perPair.values()) traffic.push({ ...pair, lookahead });
  }
  return traffic;
}

/** An integer a frame header may carry at the widest msgpack width (9 bytes). */
const WIDEST_INT = 2 ** 40;

/** Upper bound on an encoded frame header (ids, tensor name, shape, padding). */
const FRAME_HEADER_ALLOWANCE = 256;
