import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The families vLLM exports (vllm/v1/metrics/loggers.py, v0.11 and later) that mean the same thing
 * here, under vLLM's names and labels (`model_name`, `engine` = "0"; `finished_reason` on
 * request_success), so that dashboards and autoscalers written for vLLM work against rackemu.
 * Buckets are vLLM's, with finer boundaries added below its smallest one: an LPU's time per token
 * (~2 ms) is below vLLM's first bucket (10 ms), and histogram_quantile works with any boundaries.
 * `vllm:time_per_output_token_seconds` is the name vLLM used for inter-token latency before 0.11
 * (deprecated there, still in many dashboards): it gets the same observations as
 * `vllm:inter_token_latency_seconds`.
 */

const TTFT_BUCKETS = [
  0.0001, 0.0002, 0.0005, 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40,
  80, 160, 640, 2560,
];
const TOKEN_LATENCY_BUCKETS = [
  0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5,
  7.5, 10, 20, 40, 80,
];
const REQUEST_LATENCY_BUCKETS = [
  0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120,
  240, 480, 960, 1920, 7680,
];

/** vLLM's 1-2-5 buckets up to the model's context, for token counts. */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let base = 1; base <= max; base *= 10) {
    for (const m of [1, 2, 5]) if (m * base <= max) out.push(m * base);
  }
  return out;
}

/** vLLM's finish reasons; rackemu finishes on length or stop, or aborts. */
export type VllmFinishReason = 'stop' | 'length' | 'abort';

export interface VllmRequestTimes {
  readonly promptTokens: number;
  readonly generationTokens: number;
  readonly finishedReason: VllmFinishReason;
  /** Seconds, on the clock the aliases report (virtual by default). */
  readonly ttft: number;
  readonly e2e: number;
  readonly queue: number;
  /** Mean time per output token after the first; undefined for a single token. */
  readonly tpot: number | undefined;
}

type L = 'model_name' | 'engine';

export class VllmMetrics {
  private readonly labels: { model_name: string; engine: string };
  private readonly running: Gauge<L>;
  private readonly waiting: Gauge<L>;
  private readonly kvUsage: Gauge<L>;
  private readonly promptTokens: Counter<L>;
  private readonly generationTokens: Counter<L>;
  private readonly success: Counter<L | 'finished_reason'>;
  private readonly hist: Record<
    | 'ttft'
    | 'itl'
    | 'tpotLegacy'
    | 'requestTpot'
    | 'e2e'
    | 'queue'
    | 'inference'
    | 'prefill'
    | 'decode'
    | 'requestPromptTokens'
    | 'requestGenerationTokens',
    Histogram<L>
  >;

  constructor(registry: Registry, modelName: string, context: number) {
    this.labels = { model_name: modelName, engine: '0' };
    const registers = [registry];
    const labelNames = ['model_name', 'engine'] as const;
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames, buckets, registers });
    this.running = gauge('vllm:num_requests_running', 'Number of requests in model execution batches.');
    this.waiting = gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.');
    this.kvUsage = gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.');
    this.promptTokens = counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.');
    this.generationTokens = counter('vllm:generation_tokens_total', 'Number of generation tokens processed.');
    this.success = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: [...labelNames, 'finished_reason'],
      registers,
    });
    const tokens = buckets125(Math.max(1, context));
    this.hist = {
      ttft: histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS),
      itl: histogram(
        'vllm:inter_token_latency_seconds',
        'Histogram of inter-token latency in seconds.',
        TOKEN_LATENCY_BUCKETS,
      ),
      tpotLegacy: histogram(
        'vllm:time_per_output_token_seconds',
        'Histogram of time per output token in seconds. DEPRECATED in vLLM 0.11: use vllm:inter_token_latency_seconds.',
        TOKEN_LATENCY_BUCKETS,
      ),
      requestTpot: histogram(
        'vllm:request_time_per_output_token_seconds',
        'Histogram of time_per_output_token_seconds per request.',
        TOKEN_LATENCY_BUCKETS,
      ),
      e2e: histogram(
        'vllm:e2e_request_latency_seconds',
        'Histogram of e2e request latency in seconds.',
        REQUEST_LATENCY_BUCKETS,
      ),
      queue: histogram(
        'vllm:request_queue_time_seconds',
        'Histogram of time spent in WAITING phase for request.',
        REQUEST_LATENCY_BUCKETS,
      ),
      inference: histogram(
        'vllm:request_inference_time_seconds',
        'Histogram of time spent in RUNNING phase for request.',
        REQUEST_LATENCY_BUCKETS,
      ),
      prefill: histogram(
        'vllm:request_prefill_time_seconds',
        'Histogram of time spent in PREFILL phase for request.',
        REQUEST_LATENCY_BUCKETS,
      ),
      decode: histogram(
        'vllm:request_decode_time_seconds',
        'Histogram of time spent in DECODE phase for request.',
        REQUEST_LATENCY_BUCKETS,
      ),
      requestPromptTokens: histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', tokens),
      requestGenerationTokens: histogram(
        'vllm:request_generation_tokens',
        'Number of generation tokens processed.',
        tokens,
      ),
    };
    // vLLM creates every series up front, so that dashboards see zeros rather than nothing.
    for (const g of [this.running, this.waiting, this.kvUsage]) g.set(this.labels, 0);
    for (const c of [this.promptTokens, this.generationTokens]) c.inc(this.labels, 0);
    for (const reason of ['stop', 'length', 'abort'] as const)
      this.success.inc({ ...this.labels, finished_reason: reason }, 0);
    for (const h of Object.values(this.hist)) h.zero(this.labels);
  }

  setRequests(running: number, waiting: number): void {
    this.running.set(this.labels, running);
    this.waiting.set(this.labels, waiting);
  }

  setKvUsage(fraction: number): void {
    this.kvUsage.set(this.labels, fraction);
  }

  generated(tokens: number): void {
    if (tokens > 0) this.generationTokens.inc(this.labels, tokens);
  }

  interTokenLatency(seconds: number): void {
    this.hist.itl.observe(this.labels, seconds);
    this.hist.tpotLegacy.observe(this.labels, seconds);
  }

  finished(r: VllmRequestTimes): void {
    this.promptTokens.inc(this.labels, r.promptTokens);
    this.success.inc({ ...this.labels, finished_reason: r.finishedReason });
    const h = this.hist;
    h.ttft.observe(this.labels, r.ttft);
    h.e2e.observe(this.labels, r.e2e);
    h.queue.observe(this.labels, r.queue);
    h.inference.observe(this.labels, Math.max(0, r.e2e - r.queue));
    h.prefill.observe(this.labels, Math.max(0, r.ttft - r.queue));
    h.decode.observe(this.labels, Math.max(0, r.e2e - r.ttft));
    if (r.tpot !== undefined) h.requestTpot.observe(this.labels, r.tpot);
    h.requestPromptTokens.observe(this.labels, r.promptTokens);
    h.requestGenerationTokens.observe(this.labels, r.generationTokens);
  }

  aborted(): void {
    this.success.inc({ ...this.labels, finished_reason: 'abort' });
  }
}
