import { planSlots, type Plan } from '../compiler/plan.js';
import { RunError, UsageError, type RackemuError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { BatchScheduler, type PlannedWindow, type SlotOutput } from './batch-scheduler.js';
import { HostLedger } from './host-ledger.js';
import type { Deployment, WindowResult } from './deployment.js';
import {
  FILLER_TOKEN_ID,
  type CompletionEngine,
  type CompletionRequest,
  type CompletionResult,
  type EngineObserver,
  type EngineOptions,
  type TokenEvent,
} from './engine-types.js';
import { KIND, type StepSamples } from '../runtime/index.js';
import type { WindowFailure } from './engine-faults.js';
import { WindowFlights, type Flight } from './window-flights.js';
import { pacingLag, replayLive, windowView, type Live } from './engine-live.js';

/**
 * The serving engine: continuous batching over a running Deployment. Requests are queued in a
 * BatchScheduler; the engine plans windows of steps from it and runs them on the chips, keeping the
 * next window queued while one runs, and maps the sampler's streamed samples back to each request's
 * tokens. Virtual time is the emulated hardware's: with `--pace max` the chips run as fast as this
 * machine allows and virtual time advances only by the steps that run (a request arriving while the
 * system is idle starts at once, in virtual time); with `--pace realtime` virtual time is the wall
 * clock since start, windows are released no earlier than their virtual start, and each token is
 * handed to its client no earlier than its virtual time, so a client's stopwatch sees the hardware's
 * latencies. When the emulator cannot keep up, tokens come late: the lag is measured and reported
 * (EngineObserver.setPacingLag, and a warning), never hidden.
 */
export type { EngineObserver, EngineOptions };

export class Engine implements CompletionEngine {
  readonly modelName: string;
  readonly fidelity: 'numeric' | 'timing';
  readonly vocab: number;
  readonly context: number;
  private readonly scheduler: BatchScheduler;
  private readonly live = new Map<string, Live>();
  private readonly hz: number;
  private readonly windowSteps: number;
  private readonly windowsInFlight: number;
  private stepTicks: { readonly prefill: number; readonly decode: number };
  /** Virtual tick at which the next planned window starts. */
  private frontierTick = 0;
  private inFlight = 0;
  private draining = false;
  private drained: (() => void) | null = null;
  private pumpTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly wallT0 = performance.now();
  private readonly pacingLag: (seconds: number) => void;
  private readonly ledger: HostLedger;
  private readonly flights = new WindowFlights((planned, s) => this.onSamples(planned, s));
  /** The first failure since the last recovery; windows after it are void. */
  private failure: WindowFailure | null = null;
  private readonly idlers: (() => void)[] = [];
  /** Set when recovery failed: the engine takes no more requests. */
  private broken: RackemuError | null = null;

  constructor(
    private deployment: Deployment,
    private plan: Plan,
    private readonly opts: EngineOptions,
  ) {
    this.modelName = plan.model.name;
    this.fidelity = deployment.fidelity;
    this.vocab = plan.model.vocab;
    this.context = plan.options.context;
    this.hz = plan.topology.chip.clock_mhz * 1e6;
    this.windowSteps = opts.windowSteps ?? (this.fidelity === 'timing' ? 64 : 8);
    this.windowsInFlight = opts.windowsInFlight ?? 2;
    this.stepTicks = { prefill: plan.steps.prefill.lengthTicks, decode: plan.steps.decode.lengthTicks };
    const shape = { batch: planSlots(plan.options), prefillChunk: plan.options.prefillChunk };
    this.scheduler = new BatchScheduler(shape, opts.maxWaiting ?? 4 * shape.batch);
    this.pacingLag = pacingLag(opts.observer);
    this.ledger = new HostLedger(plan, deployment.fabric, deployment.hostIds);
    for (const l of this.ledger.loads) opts.observer?.addHostLoad?.(l.hostId, l.bytes, l.seconds);
  }

  get ready(): boolean {
    return !this.draining && this.broken === null;
  }

  /** The deployment serving now (recovery may replace it). */
  get current(): Deployment {
    return this.deployment;
  }

  get running(): number {
    return this.scheduler.running;
  }

  get waiting(): number {
    return this.scheduler.waiting;
  }

  submit(request: CompletionRequest, onToken?: (e: TokenEvent) => void): Promise<CompletionResult> {
    try {
      this.check(request);
      this.scheduler.enqueue({ id: request.id, promptIds: request.promptIds, maxTokens: request.maxTokens });
    } catch (e) {
      return Promise.reject(e as RackemuError);
    }
    return new Promise<CompletionResult>((resolve, reject) => {
      this.live.set(request.id, {
        request,
        resolve,
        reject,
        onToken,
        arrivalTick: this.opts.pace === 'realtime' ? Math.max(this.frontierTick, this.nowTick()) : this.frontierTick,
        admitTick: -1,
        wallStart: performance.now(),
        wallFirst: -1,
        tokens: [],
        ticks: [],
        done: false,
        offset: 0,
      });
      this.opts.observer?.requestQueued?.();
      this.report();
      this.pump();
    });
  }

  cancel(requestId: string): void {
    const r = this.live.get(requestId);
    if (r === undefined) return;
    r.done = true;
    this.live.delete(requestId);
    this.scheduler.finish(requestId);
    this.opts.observer?.requestFailed?.();
    r.reject(new UsageError('RACKEMU_ERR_CANCELLED', `request ${requestId} was cancelled`));
    this.report();
    this.settleDrain();
  }

  drain(): Promise<void> {
    this.draining = true;
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }

  private check(r: CompletionRequest): void {
    if (this.broken !== null) throw this.broken;
    if (this.draining) throw new UsageError('RACKEMU_ERR_DRAINING', 'the server is draining: it takes no new requests');
    if (this.live.has(r.id)) throw new UsageError('RACKEMU_ERR_REQUEST', `request id ${r.id} is already in use`);
    const P = r.promptIds.length;
    if (P === 0) throw new UsageError('RACKEMU_ERR_REQUEST', 'the prompt is empty', { details: { path: 'prompt' } });
    if (!Number.isSafeInteger(r.maxTokens) || r.maxTokens < 1) {
      throw new UsageError('RACKEMU_ERR_REQUEST', `max_tokens must be an integer >= 1, got ${r.maxTokens}`, {
        details: { path: 'max_tokens', got: String(r.maxTokens) },
      });
    }
    const bad = r.promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= this.vocab);
    if (bad !== undefined) {
      throw new UsageError('RACKEMU_ERR_REQUEST', `token id ${bad} is outside the vocabulary [0, ${this.vocab})`, {
        details: { path: 'prompt', got: String(bad), expected: `0 <= id < ${this.vocab}` },
      });
    }
    if (P + r.maxTokens > this.context) {
      throw new UsageError(
        'RACKEMU_ERR_REQUEST',
        `prompt of ${P} tokens plus max_tokens ${r.maxTokens} exceeds the context of ${this.context}`,
        {
          details: { path: 'prompt', expected: `prompt + max_tokens <= ${this.context}`, got: `${P} + ${r.maxTokens}` },
        },
      );
    }
  }

  /** Virtual tick of the wall clock now (realtime pacing). */
  private nowTick(): number {
    return Math.floor(((performance.now() - this.wallT0) / 1000) * this.hz);
  }

  /** Wall time (performance.now) at which virtual tick `tick` falls (realtime pacing). */
  private wallOf(tick: number): number {
    return this.wallT0 + (tick / this.hz) * 1000;
  }

  /** Plans and starts windows while fewer than windowsInFlight run and there is work. */
  private pump(): void {
    if (this.pumpTimer !== null || this.failure !== null || this.broken !== null) return;
    while (this.inFlight < this.windowsInFlight) {
      if (this.opts.pace === 'realtime') {
        const now = this.nowTick();
        // the hardware would be idle until now: the next window starts no earlier (a request never arrives
        // after the steps that serve it, even when the emulator is behind)
        if (this.frontierTick < now) this.frontierTick = now;
        // release a window no earlier than one window before its virtual start
        const lead = this.windowSteps * this.stepTicks.decode;
        const wait = this.wallOf(this.frontierTick - lead) - performance.now();
        if (wait > 1) {
          this.pumpTimer = setTimeout(() => {
            this.pumpTimer = null;
            this.pump();
          }, wait);
          return;
        }
      }
      const firstStep = this.deployment.nextStep;
      const planned = this.scheduler.plan(firstStep, this.windowSteps, this.fidelity === 'numeric');
      if (planned === null) return;
      this.start(planned);
    }
  }

  private start(planned: PlannedWindow): void {
    const baseTick = this.frontierTick;
    let tick = baseTick;
    planned.kinds.forEach((kind, i) => {
      for (const id of planned.admitted[i]) {
        const r = this.live.get(id);
        if (r !== undefined) {
          r.admitTick = tick;
          this.opts.observer?.requestAdmitted?.((tick - r.arrivalTick) / this.hz);
        }
      }
      this.ledger.step(tick / this.hz, planned.outputs[i].length);
      tick += kind === KIND.prefill ? this.stepTicks.prefill : this.stepTicks.decode;
    });
    this.frontierTick = tick;
    this.accountHosts();
    this.inFlight++;
    this.report();
    const window = { firstStep: planned.firstStep, baseTick, kinds: planned.kinds, rows: planned.rows };
    const armed = this.opts.faults?.arm?.(windowView(planned, baseTick, this.stepTicks, this.live)) ?? null;
    const spec = {
      window,
      lookaheadSteps: this.opts.lookaheadSteps,
      streamTokens: true,
      faults: armed?.frameFaults,
      chipFaults: armed?.chipFaults,
    };
    const flight = this.flights.add(planned, baseTick);
    const deployment = this.deployment;
    deployment
      .run(spec, (s) => this.flights.samples(flight, s))
      .then((result) => {
        this.opts.observer?.windowRan?.(result);
        // samples the run returned but did not stream (none, normally): the result holds them all
        this.flights.samples(flight, result.samples);
        if (this.opts.faults?.needsRecovery?.(result)) this.failed(flight, null, result);
        else flight.state = 'ok';
        this.stepsRan(planned, flight.baseTick);
      })
      .catch((e: unknown) => {
        const err = e instanceof RunError ? e : new RunError('RACKEMU_ERR_WORKER', String((e as Error)?.message ?? e));
        if (this.opts.faults === undefined) {
          this.flights.fail(flight);
          return this.windowFailed(planned, err);
        }
        this.failed(flight, err, null);
      })
      .finally(() => {
        this.inFlight--;
        this.flights.settle();
        if (this.failure !== null && this.inFlight === 0) void this.recover();
        else this.pump();
        this.checkIdle();
      });
    armed?.onStart?.();
  }

  /** A window failed (error) or needs recovery (result): the first such since the last recovery is the failure. */
  private failed(flight: Flight, error: RunError | null, result: WindowResult | null): void {
    // a completed window's samples stand (every frame arrived and checked); a failed one's later steps never came
    if (error === null) flight.state = 'ok';
    else this.flights.fail(flight);
    if (this.failure !== null) return;
    const p = flight.planned;
    this.failure = {
      error,
      result,
      firstStep: p.firstStep,
      baseTick: flight.baseTick,
      steps: p.kinds.length,
      wallMs: performance.now(),
    };
    logger().warn(
      { code: error?.code, step: p.firstStep },
      `fault detected: ${error?.message ?? 'schedule violations'}`,
    );
    this.opts.faults?.failed?.(this.failure);
  }

  /**
   * Every window in flight has settled after a failure: the fault hooks recover (a new deployment or
   * the same, resynchronised), the virtual timeline pauses for as long as that takes, and every request
   * in flight replays from its prompt and the tokens it has, in the order it arrived.
   */
  private async recover(): Promise<void> {
    const failure = this.failure!;
    this.flights.clear();
    try {
      const r = await this.opts.faults!.recover(failure, this.frontierTick);
      this.deployment = r.deployment;
      this.plan = r.plan;
      this.stepTicks = { prefill: r.plan.steps.prefill.lengthTicks, decode: r.plan.steps.decode.lengthTicks };
      this.frontierTick += r.pauseTicks;
    } catch (e) {
      this.broken =
        e instanceof RunError || e instanceof UsageError ? e : new RunError('RACKEMU_ERR_RECOVERY', String(e));
      logger().error({ code: this.broken.code }, `recovery failed, requests fail closed: ${this.broken.message}`);
      this.failure = null;
      this.failRequests(this.live.keys(), this.broken);
      this.checkIdle();
      return;
    }
    const { requests, tokens } = replayLive(this.live.values(), this.scheduler);
    this.opts.faults!.replayed?.(requests, tokens);
    this.failure = null;
    this.report();
    this.pump();
    this.checkIdle();
  }

  private stepsRan(planned: PlannedWindow, baseTick: number): void {
    const rows = planSlots(this.plan.options);
    let tick = baseTick;
    planned.kinds.forEach((k, i) => {
      const kind = k === KIND.prefill ? 'prefill' : 'decode';
      const [ticks, step, activeRows] = [this.stepTicks[kind], planned.firstStep + i, planned.activeSlots[i]];
      this.opts.observer?.stepRan?.({ kind, activeRows, rows, virtualSeconds: ticks / this.hz, step, tick });
      tick += ticks;
    });
  }

  /** The sampler's samples of steps of `planned`: each planned output becomes its request's token. */
  private onSamples(planned: PlannedWindow, s: StepSamples): void {
    const batch = planSlots(this.plan.options);
    for (let k = 0; k < s.ticks.length; k++) {
      const i = s.firstStep + k - planned.firstStep;
      if (i < 0 || i >= planned.outputs.length) continue;
      for (const o of planned.outputs[i]) {
        const id = s.ids === null ? FILLER_TOKEN_ID : s.ids[k * batch + o.slot];
        this.token(o, id, s.ticks[k]);
      }
    }
  }

  private token(o: SlotOutput, tokenId: number, tick: number): void {
    const r = this.live.get(o.requestId);
    // a request that stopped early: the rows planned for it before that are ignored
    if (r === undefined || r.done || o.index + r.offset !== r.tokens.length) return;
    r.tokens.push(tokenId);
    r.ticks.push(tick);
    const stop = this.fidelity === 'numeric' && (r.request.stopIds?.includes(tokenId) ?? false);
    const last = o.last || stop;
    if (last) r.done = true;
    const deliver = () => {
      if (r.wallFirst < 0) r.wallFirst = performance.now();
      r.onToken?.({
        requestId: r.request.id,
        index: o.index + r.offset,
        tokenId,
        virtualMs: ((tick - r.arrivalTick) / this.hz) * 1000,
      });
      if (last) this.finish(r, stop ? 'stop' : 'length');
    };
    if (stop) this.scheduler.finish(r.request.id);
    if (this.opts.pace !== 'realtime') return deliver();
    const due = this.wallOf(tick);
    const early = due - performance.now();
    if (early > 1) {
      setTimeout(deliver, early);
      return;
    }
    this.pacingLag(-early / 1000);
    deliver();
  }

  private finish(r: Live, reason: 'length' | 'stop'): void {
    this.live.delete(r.request.id);
    const ms = (ticks: number) => (ticks / this.hz) * 1000;
    const first = r.ticks[0];
    const lastTick = r.ticks[r.ticks.length - 1];
    const result: CompletionResult = {
      id: r.request.id,
      tokenIds: r.tokens,
      finishReason: reason,
      fidelity: this.fidelity,
      promptTokens: r.request.promptIds.length,
      virtual: {
        ttftMs: ms(first - r.arrivalTick),
        tpotMs: r.ticks.length > 1 ? ms(lastTick - first) / (r.ticks.length - 1) : 0,
        e2eMs: ms(lastTick - r.arrivalTick),
        queueMs: ms(Math.max(0, r.admitTick - r.arrivalTick)),
        arrivalMs: ms(r.arrivalTick),
      },
      wall: { ttftMs: r.wallFirst - r.wallStart, e2eMs: performance.now() - r.wallStart },
    };
    this.ledger.request(result.promptTokens, r.arrivalTick / this.hz, r.tokens.length, lastTick / this.hz);
    this.opts.observer?.requestFinished?.(result);
    r.resolve(result);
    this.report();
    this.settleDrain();
  }

  /** Without fault hooks a failed window fails its requests (the chips start the next window clean). */
  private windowFailed(planned: PlannedWindow, err: RunError): void {
    const ids = new Set(planned.outputs.flat().map((o) => o.requestId));
    for (const list of planned.admitted) for (const id of list) ids.add(id);
    logger().error({ code: err.code, requests: [...ids] }, `a window of steps failed: ${err.message}`);
    this.failRequests(ids, err);
  }

  private failRequests(ids: Iterable<string>, err: RackemuError): void {
    for (const id of [...ids]) {
      const r = this.live.get(id);
      if (r === undefined) continue;
      this.live.delete(id);
      this.scheduler.finish(id);
      this.opts.observer?.requestFailed?.();
      r.reject(err);
    }
    this.report();
    this.settleDrain();
  }

  /** Health polls up to the frontier, calendars retired before the oldest live request, busy times reported. */
  private accountHosts(): void {
    const frontier = this.frontierTick / this.hz;
    this.ledger.pollUntil(frontier);
    let oldest = this.frontierTick;
    for (const r of this.live.values()) oldest = Math.min(oldest, r.arrivalTick);
    this.ledger.retire(oldest / this.hz);
    const cpu = process.cpuUsage();
    this.opts.observer?.hostCpu?.(this.ledger.busy(), (cpu.user + cpu.system) / 1e6);
  }

  private report(): void {
    this.opts.observer?.setRequests?.(this.scheduler.running, this.scheduler.waiting);
    this.opts.observer?.setKvCache?.(this.scheduler.kvTokens, planSlots(this.plan.options) * this.context);
  }

  /** Resolves once no window runs and no recovery is under way (a campaign's last fault has shown its effect). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idlers.push(resolve);
      this.checkIdle();
    });
  }

  private checkIdle(): void {
    if (this.inFlight > 0 || this.failure !== null) return;
    for (const resolve of this.idlers.splice(0)) resolve();
  }

  private settleDrain(): void {
    if (this.draining && this.live.size === 0 && this.drained !== null) {
      const d = this.drained;
      this.drained = null;
      d();
    }
  }
}
