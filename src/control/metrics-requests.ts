import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CompletionResult, TokenEvent } from './engine-types.js';
import type { VllmMetrics } from './metrics-vllm.js';

/**
 * The request families of ServingMetrics: arrivals, admissions, rejections, finishes, tokens, and the
 * latency histograms in both clocks (the emulated hardware's virtual time, this machine's wall time),
 * with their vLLM aliases. No label names a request: per-request values only ever land in histograms.
 */

export type RejectReason = 'queue_full' | 'invalid' | 'draining';
export const REJECT_REASONS: readonly RejectReason[] = ['queue_full', 'invalid', 'draining'];

/** 1-2-5 from 0.1 ms to 1000 s: virtual times of an LPU are milliseconds, wall times of an emulator up to minutes. */
export const TIME_BUCKETS: readonly number[] = (() => {
  const out: number[] = [];
  for (let e = -4; e <= 2; e++) for (const m of [1, 2, 5]) out.push(Number((m * 10 ** e).toPrecision(1)));
  out.push(1000);
  return out;
})();

/** Per running request: its last token's times and how many of its tokens were counted. */
interface Tracked {
  virtualMs: number;
  wallMs: number;
  counted: number;
}
/** Requests that never finish (a caller that forgets requestFinished) cannot grow the map past this. */
const MAX_TRACKED = 100_000;

type Clocks = { readonly virtual: Histogram; readonly wall: Histogram };

export class RequestMetrics {
  private readonly tracked = new Map<string, Tracked>();
  private readonly c: Record<'arrived' | 'admitted' | 'rejected' | 'finished' | 'prompt' | 'generated', Counter>;
  private readonly running: Gauge;
  private readonly waiting: Gauge;
  private readonly h: Record<'ttft' | 'tpot' | 'itl' | 'e2e', Clocks> & { readonly queue: Histogram };

  constructor(
    registry: Registry,
    private readonly vllm: VllmMetrics,
    private readonly vllmWall: boolean,
  ) {
    const registers = [registry];
    const counter = (name: string, help: string, labelNames: string[] = []) =>
      new Counter({ name, help, labelNames, registers });
    const histogram = (name: string, help: string) =>
      new Histogram({ name, help, buckets: [...TIME_BUCKETS], registers });
    const clocks = (base: string, what: string): Clocks => ({
      virtual: histogram(`rackemu_${base}_virtual_seconds`, `${what}, in the emulated hardware's virtual time.`),
      wall: histogram(`rackemu_${base}_wall_seconds`, `${what}, in this machine's wall-clock time.`),
    });
    this.c = {
      arrived: counter('rackemu_requests_arrived_total', 'Requests queued at the coordinator.'),
      admitted: counter('rackemu_requests_admitted_total', 'Requests admitted into a batch slot.'),
      rejected: counter('rackemu_requests_rejected_total', 'Requests refused, by reason.', ['reason']),
      finished: counter('rackemu_requests_finished_total', 'Requests finished, by reason.', ['reason']),
      prompt: counter('rackemu_prompt_tokens_total', 'Prompt tokens of finished requests.'),
      generated: counter('rackemu_generation_tokens_total', 'Tokens generated.'),
    };
    for (const reason of REJECT_REASONS) this.c.rejected.inc({ reason }, 0);
    for (const reason of ['length', 'stop', 'abort']) this.c.finished.inc({ reason }, 0);
    this.running = new Gauge({ name: 'rackemu_requests_running', help: 'Requests in batch slots.', registers });
    this.waiting = new Gauge({ name: 'rackemu_requests_waiting', help: 'Requests waiting for a slot.', registers });
    this.h = {
      ttft: clocks('time_to_first_token', 'Arrival to first token, queueing included'),
      tpot: clocks('time_per_output_token', 'Mean time per output token after the first, per request'),
      itl: clocks('inter_token_latency', 'Time between consecutive tokens of a request'),
      e2e: clocks('e2e_request_latency', 'Arrival to last token'),
      queue: histogram(
        'rackemu_request_queue_time_virtual_seconds',
        "Arrival to admission into a batch slot, in the emulated hardware's virtual time.",
      ),
    };
  }

  queued(): void {
    this.c.arrived.inc();
  }

  rejected(reason: RejectReason): void {
    this.c.rejected.inc({ reason });
  }

  admitted(): void {
    this.c.admitted.inc();
  }

  setRequests(running: number, waiting: number): void {
    this.running.set(running);
    this.waiting.set(waiting);
    this.vllm.setRequests(running, waiting);
  }

  token(e: TokenEvent, wallMs: number): void {
    let t = this.tracked.get(e.requestId);
    if (t === undefined) {
      if (this.tracked.size >= MAX_TRACKED) this.tracked.delete(this.tracked.keys().next().value as string);
      t = { virtualMs: e.virtualMs, wallMs, counted: 0 };
      this.tracked.set(e.requestId, t);
    } else {
      this.observeItl((e.virtualMs - t.virtualMs) / 1000, (wallMs - t.wallMs) / 1000);
      t.virtualMs = e.virtualMs;
      t.wallMs = wallMs;
    }
    t.counted++;
    this.c.generated.inc();
    this.vllm.generated(1);
  }

  finished(r: CompletionResult): void {
    const n = r.tokenIds.length;
    const counted = Math.min(n, this.tracked.get(r.id)?.counted ?? 0);
    this.tracked.delete(r.id);
    this.c.generated.inc(n - counted);
    this.vllm.generated(n - counted);
    this.c.prompt.inc(r.promptTokens);
    this.c.finished.inc({ reason: r.finishReason });

    const v = r.virtual;
    const wallTpotMs = n > 1 ? (r.wall.e2eMs - r.wall.ttftMs) / (n - 1) : 0;
    // Without per-token calls, each gap after the first token is taken as the request's mean.
    if (counted === 0) for (let i = 1; i < n; i++) this.observeItl(v.tpotMs / 1000, wallTpotMs / 1000);
    this.h.ttft.virtual.observe(v.ttftMs / 1000);
    this.h.ttft.wall.observe(r.wall.ttftMs / 1000);
    this.h.e2e.virtual.observe(v.e2eMs / 1000);
    this.h.e2e.wall.observe(r.wall.e2eMs / 1000);
    this.h.queue.observe(v.queueMs / 1000);
    if (n > 1) {
      this.h.tpot.virtual.observe(v.tpotMs / 1000);
      this.h.tpot.wall.observe(wallTpotMs / 1000);
    }
    const wall = this.vllmWall;
    this.vllm.finished({
      promptTokens: r.promptTokens,
      generationTokens: n,
      finishedReason: r.finishReason,
      ttft: (wall ? r.wall.ttftMs : v.ttftMs) / 1000,
      e2e: (wall ? r.wall.e2eMs : v.e2eMs) / 1000,
      queue: v.queueMs / 1000,
      tpot: n > 1 ? (wall ? wallTpotMs : v.tpotMs) / 1000 : undefined,
    });
  }

  aborted(requestId: string | undefined): void {
    if (requestId !== undefined) this.tracked.delete(requestId);
    this.c.finished.inc({ reason: 'abort' });
    this.vllm.aborted();
  }

  private observeItl(virtualSeconds: number, wallSeconds: number): void {
    this.h.itl.virtual.observe(virtualSeconds);
    this.h.itl.wall.observe(wallSeconds);
    this.vllm.interTokenLatency(this.vllmWall ? wallSeconds : virtualSeconds);
  }
}
