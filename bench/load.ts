/**
 * A seeded load generator for `rackemu serve`, speaking the OpenAI completions API over HTTP as a
 * client would, in the manner of serving benchmarks (vLLM's benchmark_serving): closed-loop (a fixed
 * number of clients, each sending its next request when the last one ends) or open-loop (Poisson
 * arrivals at a given rate), prompt and output lengths drawn uniformly from ranges, every request
 * streamed. Reports client-side wall TTFT and time per output token percentiles, and the server's
 * virtual (emulated hardware) timings from the `rackemu` extension of each response.
 */

export interface LoadSpec {
  readonly url: string;
  readonly model: string;
  readonly requests: number;
  readonly seed: number;
  readonly mode:
    | { readonly kind: 'closed'; readonly concurrency: number }
    | { readonly kind: 'poisson'; readonly ratePerSecond: number };
  readonly promptTokens: { readonly min: number; readonly max: number };
  readonly outputTokens: { readonly min: number; readonly max: number };
  readonly vocab: number;
  /** Closed loop: clients start no request after this many ms (the rest of `requests` is not sent). */
  readonly deadlineMs?: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly mean: number;
}

export interface LoadReport {
  readonly requests: number;
  readonly completed: number;
  readonly failed: number;
  readonly errors: string[];
  readonly wall_s: number;
  readonly requests_per_s_wall: number;
  readonly tokens_per_s_wall: number;
  /** Generated tokens over the virtual time from the first arrival to the last token. */
  readonly tokens_per_s_virtual: number;
  readonly requests_per_s_virtual: number;
  readonly wall_ttft_ms: Percentiles;
  readonly wall_tpot_ms: Percentiles;
  readonly virtual_ttft_ms: Percentiles;
  readonly virtual_tpot_ms: Percentiles;
  readonly generated_tokens: number;
}

interface Outcome {
  readonly ok: boolean;
  readonly error?: string;
  readonly tokens: number;
  readonly wallTtftMs: number;
  readonly wallTpotMs: number;
  readonly virtual: { ttft_ms: number; tpot_ms: number; e2e_ms: number; arrival_ms?: number } | null;
}

/** mulberry32: small, seeded, good enough for workload draws. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function percentiles(xs: readonly number[]): Percentiles {
  if (xs.length === 0) return { p50: NaN, p90: NaN, p99: NaN, mean: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

/** One streamed completion: client-side first-token and inter-token wall times, and the server's virtual timings. */
async function complete(url: string, model: string, prompt: number[], maxTokens: number): Promise<Outcome> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      prompt,
      max_tokens: maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok || res.body === null) {
    return {
      ok: false,
      error: `${res.status} ${await res.text()}`.slice(0, 200),
      tokens: 0,
      wallTtftMs: NaN,
      wallTpotMs: NaN,
      virtual: null,
    };
  }
  let first = -1;
  let last = -1;
  let tokens = 0;
  let virtual: Outcome['virtual'] = null;
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 2);
      const data = event.startsWith('data: ') ? event.slice(6) : '';
      if (data === '' || data === '[DONE]') continue;
      const j = JSON.parse(data) as {
        choices?: { token_ids?: number[] }[];
        rackemu?: { virtual?: Outcome['virtual'] };
      };
      const n = j.choices?.[0]?.token_ids?.length ?? 0;
      if (n > 0) {
        const now = performance.now();
        if (first < 0) first = now;
        last = now;
        tokens += n;
      }
      if (j.rackemu?.virtual) virtual = j.rackemu.virtual;
    }
  }
  return {
    ok: tokens > 0,
    error: tokens > 0 ? undefined : 'no tokens',
    tokens,
    wallTtftMs: first - t0,
    wallTpotMs: tokens > 1 ? (last - first) / (tokens - 1) : NaN,
    virtual,
  };
}

export async function runLoad(spec: LoadSpec): Promise<LoadReport> {
  const draw = rng(spec.seed);
  const between = (r: { min: number; max: number }) => r.min + Math.floor(draw() * (r.max - r.min + 1));
  const work = Array.from({ length: spec.requests }, () => {
    const prompt = Array.from({ length: between(spec.promptTokens) }, () => Math.floor(draw() * spec.vocab));
    return { prompt, maxTokens: between(spec.outputTokens), gapS: -Math.log(1 - draw()) };
  });
  const outcomes: Outcome[] = [];
  const one = async (w: (typeof work)[number]) => {
    try {
      outcomes.push(await complete(spec.url, spec.model, w.prompt, w.maxTokens));
    } catch (e) {
      outcomes.push({
        ok: false,
        error: String((e as Error).message),
        tokens: 0,
        wallTtftMs: NaN,
        wallTpotMs: NaN,
        virtual: null,
      });
    }
  };
  const t0 = performance.now();
  if (spec.mode.kind === 'closed') {
    let next = 0;
    const end = t0 + (spec.deadlineMs ?? Infinity);
    const client = async () => {
      while (next < work.length && performance.now() < end) await one(work[next++]);
    };
    await Promise.all(Array.from({ length: spec.mode.concurrency }, client));
  } else {
    const running: Promise<void>[] = [];
    for (const w of work) {
      await new Promise((r) => setTimeout(r, (w.gapS / (spec.mode as { ratePerSecond: number }).ratePerSecond) * 1000));
      running.push(one(w));
    }
    await Promise.all(running);
  }
  const wallS = (performance.now() - t0) / 1000;
  const ok = outcomes.filter((o) => o.ok);
  const generated = ok.reduce((n, o) => n + o.tokens, 0);
  const v = ok.map((o) => o.virtual).filter((x): x is NonNullable<Outcome['virtual']> => x !== null);
  const withArrival = v.filter((x) => x.arrival_ms !== undefined);
  const spanMs =
    withArrival.length > 0
      ? Math.max(...withArrival.map((x) => x.arrival_ms! + x.e2e_ms)) -
        Math.min(...withArrival.map((x) => x.arrival_ms!))
      : NaN;
  return {
    requests: outcomes.length,
    completed: ok.length,
    failed: outcomes.length - ok.length,
    errors: [...new Set(outcomes.filter((o) => !o.ok).map((o) => o.error ?? '?'))].slice(0, 5),
    wall_s: wallS,
    requests_per_s_wall: ok.length / wallS,
    tokens_per_s_wall: generated / wallS,
    tokens_per_s_virtual: generated / (spanMs / 1000),
    requests_per_s_virtual: ok.length / (spanMs / 1000),
    wall_ttft_ms: percentiles(ok.map((o) => o.wallTtftMs)),
    wall_tpot_ms: percentiles(ok.map((o) => o.wallTpotMs).filter((x) => !Number.isNaN(x))),
    virtual_ttft_ms: percentiles(v.map((x) => x.ttft_ms)),
    virtual_tpot_ms: percentiles(v.map((x) => x.tpot_ms).filter((x) => x > 0)),
    generated_tokens: generated,
  };
}
