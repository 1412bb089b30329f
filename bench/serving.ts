/**
 * The serving section of `npm run bench`: `rackemu serve` under the load generator (load.ts), one
 * fresh server process per case (serve-once.ts): requests/s and tokens/s (wall and virtual) against
 * batch size, TTFT and time per output token percentiles, and whether `--pace realtime` keeps up.
 */
import type { LoadReport } from './load.js';
import type { ServeCase, ServeResult } from './serve-once.js';

type Child = <T>(label: string, script: string, args: string[], timeoutS: number) => T | { error: string };

const TINY_VOCAB = 256;
const MIXTRAL_VOCAB = 32000;

interface ServingRun {
  readonly label: string;
  readonly c: ServeCase;
  readonly r: ServeResult | { error: string };
}

export function servingCases(topo: (name: string) => string): { label: string; c: ServeCase }[] {
  const tiny = (batch: number): ServeCase => ({
    topology: topo('groq-72'),
    sets: ['chip.sram_mib=0.15'],
    model: 'mixtral-tiny',
    fidelity: 'numeric',
    batch,
    context: 128,
    promptTokens: 16,
    pace: 'max',
    vocab: TINY_VOCAB,
    loads: [
      {
        requests: 6 * batch + 8,
        seed: 1,
        mode: { kind: 'closed', concurrency: 2 * batch },
        promptTokens: { min: 4, max: 16 },
        outputTokens: { min: 4, max: 16 },
      },
      ...(batch === 8
        ? [
            {
              requests: 40,
              seed: 2,
              mode: { kind: 'poisson' as const, ratePerSecond: 10 },
              promptTokens: { min: 4, max: 16 },
              outputTokens: { min: 4, max: 16 },
            },
          ]
        : []),
    ],
  });
  const big = (batch: number, pace: 'max' | 'realtime'): ServeCase => ({
    topology: topo('groq-576'),
    sets: [],
    model: 'mixtral-8x7b',
    fidelity: 'timing',
    batch,
    // the model's 32k context leaves no room for 8 slots' KV caches on 512 chips; 4k does
    context: 4096,
    promptTokens: 64,
    pace,
    windowSteps: pace === 'realtime' ? 256 : 64,
    // realtime: tokens stream at the end of each look-ahead window, so a short one streams them sooner
    lookahead: pace === 'realtime' ? 31 : undefined,
    vocab: MIXTRAL_VOCAB,
    loads: [
      pace === 'realtime'
        ? {
            requests: 4,
            seed: 3,
            mode: { kind: 'closed', concurrency: 1 },
            promptTokens: { min: 64, max: 64 },
            outputTokens: { min: 128, max: 128 },
          }
        : {
            requests: 4 * batch + 4,
            seed: 3,
            mode: { kind: 'closed', concurrency: 2 * batch },
            promptTokens: { min: 16, max: 64 },
            outputTokens: { min: 32, max: 128 },
          },
    ],
  });
  return [
    ...[1, 4, 8].map((b) => ({ label: `mixtral-tiny numeric on groq-72, batch ${b}`, c: tiny(b) })),
    ...[1, 8].map((b) => ({ label: `mixtral-8x7b timing on groq-576, batch ${b}`, c: big(b, 'max') })),
    { label: 'mixtral-8x7b timing on groq-576, batch 1, pace realtime', c: big(1, 'realtime') },
  ];
}

export function runServing(child: Child, topo: (name: string) => string): ServingRun[] {
  return servingCases(topo).map(({ label, c }) => ({
    label,
    c,
    r: child<ServeResult>(`serve: ${label}`, 'serve-once.js', [JSON.stringify(c)], 600),
  }));
}

const f = (v: number | undefined, d = 1): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));

function row(label: string, c: ServeCase, l: LoadReport, mode: ServeCase['loads'][number]['mode']): string {
  const load = mode.kind === 'closed' ? `${mode.concurrency} clients` : `Poisson ${mode.ratePerSecond}/s`;
  return `| ${label} | ${c.pace} | ${load} | ${l.completed} / ${l.requests} | ${f(l.requests_per_s_wall, 2)} | ${f(l.tokens_per_s_wall, 0)} | ${f(l.tokens_per_s_virtual, 0)} | ${f(l.wall_ttft_ms.p50)} / ${f(l.wall_ttft_ms.p90)} | ${f(l.wall_tpot_ms.p50, 2)} / ${f(l.wall_tpot_ms.p90, 2)} | ${f(l.virtual_ttft_ms.p50, 2)} / ${f(l.virtual_ttft_ms.p90, 2)} | ${f(l.virtual_tpot_ms.p50, 3)} / ${f(l.virtual_tpot_ms.p90, 3)} |`;
}

export function servingSection(runs: readonly ServingRun[]): string[] {
  const lines = [
    '',
    '### Serving: `rackemu serve` under load',
    '',
    "Each case starts `rackemu serve` in a fresh process and drives it over HTTP with the seeded load generator (`bench/load.ts`: streamed completions, prompt and output lengths drawn uniformly; closed loop: each client sends its next request when its last one ends; Poisson: open-loop arrivals at a rate). Wall figures are the client's stopwatch (TTFT: request sent to first streamed token; TPOT: mean gap between its tokens); virtual figures are the emulated hardware's, from each response's `rackemu.virtual` (tokens/s virtual: generated tokens over the virtual time from the first arrival to the last token). mixtral-tiny runs numeric (real values) with `chip.sram_mib=0.15`, context 128 and prefill chunks of 16; mixtral-8x7b runs timing fidelity (the filler token) with context 4096, windows of 64 steps (256 with pace realtime and a look-ahead of 31 steps; docs/serving.md, \"Windows\"). In timing fidelity the sampler reports a look-ahead window's tokens together, so under pace max a client receives them in bursts and its wall TPOT measures the gaps inside a burst: tokens/s wall is the throughput figure there.",
    '',
    '| case | pace | load | completed | requests/s wall | tokens/s wall | tokens/s virtual | TTFT wall p50 / p90 ms | TPOT wall p50 / p90 ms | TTFT virtual p50 / p90 ms | TPOT virtual p50 / p90 ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const { label, c, r } of runs) {
    if ('error' in r) {
      lines.push(`| ${label} | ${c.pace} | failed: ${r.error.replace(/\|/g, '/')} | | | | | | | | |`);
      continue;
    }
    r.loads.forEach((l, i) => lines.push(row(label, c, l, c.loads[i].mode)));
  }
  const paced = runs.find((x) => x.c.pace === 'realtime');
  if (paced && !('error' in paced.r) && paced.r.loads[0]) {
    const l = paced.r.loads[0];
    const ttftLag = l.wall_ttft_ms.p50 - l.virtual_ttft_ms.p50;
    const tpotLag = l.wall_tpot_ms.p50 - l.virtual_tpot_ms.p50;
    lines.push(
      '',
      `Pace realtime, mixtral-8x7b on groq-576 at batch 1: the client's wall TTFT is ${f(l.wall_ttft_ms.p50)} ms (p50) against the hardware's ${f(l.virtual_ttft_ms.p50, 2)} ms, and its wall time per output token ${f(l.wall_tpot_ms.p50, 3)} ms against ${f(l.virtual_tpot_ms.p50, 3)} ms: ${tpotLag <= 0.05 * l.virtual_tpot_ms.p50 ? 'the emulator keeps up with the hardware it emulates' : `the emulator falls behind by ${f(tpotLag, 3)} ms per token (${f((100 * tpotLag) / l.virtual_tpot_ms.p50, 0)}%)`}; the first token comes ${f(ttftLag)} ms after its virtual time (HTTP, the first window's start and the run's start-up included).`,
    );
  }
  return lines;
}
