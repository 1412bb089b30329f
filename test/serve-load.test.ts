import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/load.js';
import { referenceGenerate } from '../src/runtime/reference.js';
import { mulberry32 } from './helpers/random.js';
import {
  problemsBesidesVllmNames,
  promtoolCheckMetrics,
  startPrometheus,
  type PrometheusServer,
} from './helpers/prometheus.js';
import { startServe, tinyArgs, type ServeProcess } from './serve-fixtures.js';

/**
 * `rackemu serve` under load, as operators would see it: 32 concurrent clients with mixed prompt
 * lengths and max tokens against mixtral-tiny numeric with 4 batch slots, every request checked
 * against the single-process reference, and a real Prometheus scraping the server.
 */

interface Completion {
  choices: { token_ids: number[]; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number };
}

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (
      (await fetch(`${url}/ready`).then(
        (r) => r.status,
        () => 0,
      )) === 200
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('serve did not become ready within 60 s');
}

describe('serve under load', () => {
  let serve: ServeProcess;
  let prom: PrometheusServer;
  beforeAll(async () => {
    serve = await startServe(tinyArgs(4));
    prom = await startPrometheus({ targets: [new URL(serve.url).host] });
    await waitReady(serve.url);
  }, 120_000);
  afterAll(async () => {
    await prom?.stop();
    const exit = await serve?.stop();
    expect(exit?.code).toBe(0);
  });

  it('serve - 32 concurrent clients all complete with their reference tokens; batching shows in the metrics', async () => {
    const { config, weights } = loadModel('mixtral-tiny', { dtype: 'bf16', withWeights: true });
    const rand = mulberry32(32);
    const work = Array.from({ length: 32 }, (_, i) => ({
      prompt: Array.from({ length: 1 + Math.floor(rand() * 10) }, () => Math.floor(rand() * config.vocab)),
      max: 1 + Math.floor(rand() * 8),
      stream: i % 2 === 1,
    }));
    const results = await Promise.all(
      work.map(async (w) => {
        const res = await fetch(`${serve.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mixtral-tiny', prompt: w.prompt, max_tokens: w.max, stream: w.stream }),
        });
        expect(res.status).toBe(200);
        if (!w.stream) return ((await res.json()) as Completion).choices[0].token_ids;
        const ids: number[] = [];
        for (const line of (await res.text()).split('\n')) {
          if (!line.startsWith('data: {')) continue;
          ids.push(...((JSON.parse(line.slice(6)) as Completion).choices?.[0]?.token_ids ?? []));
        }
        return ids;
      }),
    );
    work.forEach((w, i) => {
      expect(results[i], `request ${i}`).toEqual(referenceGenerate(config, weights!, w.prompt, w.max).tokens);
    });
    const text = await (await fetch(`${serve.url}/metrics`)).text();
    const value = (name: string, label = '') => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}${label}`));
      return line === undefined ? NaN : Number(line.split(' ').pop());
    };
    const generated = work.reduce((n, w) => n + w.max, 0);
    expect(value('rackemu_generation_tokens_total')).toBe(generated);
    expect(value('vllm:generation_tokens_total')).toBe(generated);
    // batching: the steps carried more requests' rows than there were steps
    const rows = value('rackemu_step_rows_active_total', '{kind="decode"}');
    const steps = value('rackemu_steps_total', '{kind="decode"}');
    expect(rows / steps).toBeGreaterThan(1);
    expect(problemsBesidesVllmNames(promtoolCheckMetrics(text))).toEqual([]);
  }, 180_000);

  it('serve - a real Prometheus scrapes every metric family the server exports', async () => {
    const text = await (await fetch(`${serve.url}/metrics`)).text();
    // rackemu's own families and vLLM's names (prom-client's process defaults are not ours to fill)
    const families = [...text.matchAll(/^# TYPE ((?:rackemu_|vllm:)\S+) (\S+)$/gm)].map((m) => ({
      name: m[1],
      type: m[2],
    }));
    expect(families.length).toBeGreaterThan(30);
    await prom.waitForScrape();
    await prom.waitFor('rackemu_generation_tokens_total', (r) => r.length > 0 && Number(r[0].value[1]) > 0, 20_000);
    const scraped = new Set((await prom.query('count by (__name__) ({job="rackemu"})')).map((s) => s.metric.__name__));
    const missing = families.filter(({ name, type }) => {
      const names =
        type === 'histogram' ? [`${name}_bucket`, `${name}_count`] : type === 'summary' ? [`${name}_count`] : [name];
      return !names.some((n) => scraped.has(n));
    });
    expect(missing.map((f) => f.name)).toEqual([]);
  }, 60_000);
});
