import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import type { Plan } from '../src/compiler/plan.js';
import type { EngineObserver } from '../src/control/engine.js';
import type { CompletionResult } from '../src/control/engine-types.js';
import { chipsOfPlan, linkTrafficOfPlan, ServingMetrics, type HostCpuTotal } from '../src/control/metrics.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology } from '../src/topology/load.js';
import { topo } from './helpers/cli.js';
import {
  freePort,
  problemsBesidesVllmNames,
  promtoolCheckMetrics,
  startPrometheus,
  withPrometheus,
} from './helpers/prometheus.js';

/** Series of the registry, per family name (histograms: buckets, sum and count). */
async function seriesByFamily(
  m: ServingMetrics,
): Promise<Map<string, { type: string; labels: Record<string, string | number>[] }>> {
  const out = new Map<string, { type: string; labels: Record<string, string | number>[] }>();
  for (const f of await m.registry.getMetricsAsJSON()) {
    out.set(f.name, { type: String(f.type), labels: f.values.map((v) => v.labels as Record<string, string | number>) });
  }
  return out;
}

/** The names a Prometheus stores for a family: a histogram's three series names, or the family's. */
function sampleNames(name: string, type: string): string[] {
  return type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
}

async function value(m: ServingMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const f = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  if (!f) throw new Error(`no family ${name}`);
  return f.values
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((s, v) => s + v.value, 0);
}

/** A histogram's _count and _sum. */
async function histogram(m: ServingMetrics, name: string): Promise<{ count: number; sum: number }> {
  const f = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const of = (suffix: string) =>
    f?.values.find((v) => (v as { metricName?: string }).metricName === `${name}${suffix}`)?.value ?? NaN;
  return { count: of('_count'), sum: of('_sum') };
}

function result(id: string, n: number, o: Partial<CompletionResult['virtual']> = {}): CompletionResult {
  const ttftMs = o.ttftMs ?? 40;
  const tpotMs = o.tpotMs ?? 2.1;
  return {
    id,
    tokenIds: Array.from({ length: n }, () => 0),
    finishReason: 'length',
    fidelity: 'timing',
    promptTokens: 64,
    virtual: { ttftMs, tpotMs, e2eMs: ttftMs + tpotMs * (n - 1), queueMs: o.queueMs ?? 1, arrivalMs: 0 },
    wall: { ttftMs: 300, e2eMs: 300 + 25 * (n - 1) },
  };
}

/**
 * A 576-chip deployment's metrics after start-up and 32 requests, fed by hand with the values the
 * engine and host agents report: chips and link traffic from the compiled Plan, step lengths from its
 * schedule, host CPU and PCIe loads from the topology.
 */
function feed(m: ServingMetrics, plan: Plan, fabric: Fabric): void {
  const t = plan.topology;
  const secondsPerTick = 1 / (t.chip.clock_mhz * 1e6);
  const prefillS = plan.steps.prefill.lengthTicks * secondsPerTick;
  const decodeS = plan.steps.decode.lengthTicks * secondsPerTick;
  const chips = chipsOfPlan(plan, fabric);
  for (let ready = 0; ready <= fabric.chipCount; ready += 96) m.setStartup(ready, fabric.chipCount);
  m.setStartup(fabric.chipCount, fabric.chipCount);
  m.setPlan(plan, fabric, ['r3.n2.c5']);
  const pcieBytesPerS = (t.host.pcie_gbps * 1e9) / 8;
  const hosts = new Map<string, number>();
  for (const c of chips) hosts.set(c.hostId, (hosts.get(c.hostId) ?? 0) + c.sramUsedBytes);
  const busy: HostCpuTotal[] = [];
  for (const [hostId, bytes] of hosts) {
    m.addHostLoad(hostId, bytes, bytes / pcieBytesPerS);
    for (let cpu = 0; cpu < t.cpus_per_node; cpu++) busy.push({ hostId, cpu, busySeconds: bytes / pcieBytesPerS / 2 });
  }
  m.hostCpu(busy, 1.5);
  const rows = plan.options.batch;
  const context = plan.options.context;
  for (let i = 0; i < 32; i++) {
    m.requestQueued();
    m.setRequests(Math.min(i, rows), Math.max(0, i + 1 - rows));
  }
  m.requestRejected('queue_full');
  let held = 0;
  for (let i = 0; i < 32; i++) {
    const id = `cmpl-${i}`;
    const prompt = 16 + 8 * (i % 8);
    const tokens = 4 + (i % 5) * 4;
    m.requestAdmitted();
    const prefills = Math.ceil(prompt / plan.options.prefillChunk);
    for (let s = 0; s < prefills; s++) m.stepRan({ kind: 'prefill', activeRows: 1, rows, virtualSeconds: prefillS });
    const ttftMs = (prefills * prefillS + decodeS) * 1000;
    for (let k = 0; k < tokens; k++) {
      // as the engine reports it: the step's length is the Plan's
      m.stepRan({ kind: 'decode', activeRows: 1 + (i % rows), rows });
      // half the requests report each token as it comes, the others only their result
      if (i % 2 === 0) {
        m.tokenGenerated(
          { requestId: id, index: k, tokenId: 0, virtualMs: ttftMs + k * decodeS * 1000 },
          1000 + k * 20,
        );
      }
    }
    held = Math.min(rows * context, held + prompt + tokens);
    m.setKvCache(held, rows * context);
    if (i === 31) m.requestFailed(id);
    else m.requestFinished({ ...result(id, tokens, { ttftMs, tpotMs: decodeS * 1000 }), promptTokens: prompt });
  }
  m.setRequests(0, 0);
  m.setPacingLag(0.0004);
  m.windowRan({
    violations: [{ kind: 'late' }],
    messages: { frames: 1496 * 40, bytes: 2e8, transportMessages: 9000, transportBytes: 2.1e8 },
  });
  m.addViolations({ duplicate: 2 });
}

describe('metrics', () => {
  let plan: Plan;
  let fabric: Fabric;
  let metrics: ServingMetrics;
  let server: Server;
  let target: string;

  beforeAll(async () => {
    const t = loadTopology(topo('groq-576'));
    fabric = new Fabric(t);
    plan = compile(t, BUILTIN_MODELS['mixtral-8x7b'], {}, fabric);
    metrics = new ServingMetrics({
      modelName: 'mixtral-8x7b',
      topology: t.name,
      fidelity: 'timing',
      context: plan.options.context,
    });
    feed(metrics, plan, fabric);
    server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
  });

  it('metrics - promtool check metrics passes on the served exposition of a 576-chip deployment', async () => {
    const res = await fetch(`http://${target}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const all = promtoolCheckMetrics(text);
    // promtool's only complaint is the ':' that vLLM's own names carry, once per vllm: family
    expect(problemsBesidesVllmNames(all), all.output).toEqual([]);
    const vllmFamilies = text.split('\n').filter((l) => l.startsWith('# TYPE vllm:')).length;
    expect(vllmFamilies).toBeGreaterThanOrEqual(10);
    expect(all.problems).toHaveLength(vllmFamilies);
    // without the vLLM aliases, the exposition is clean
    const ours = text
      .split('\n')
      .filter((l) => !/^(# (HELP|TYPE) )?vllm:/.test(l))
      .join('\n');
    const clean = promtoolCheckMetrics(ours);
    expect(clean.code, clean.output).toBe(0);
    expect(clean.problems).toEqual([]);
  });

  it('metrics - a real Prometheus scrapes the server and every family has samples', async () => {
    const families = await seriesByFamily(metrics);
    const expected = [...families].flatMap(([name, f]) => sampleNames(name, f.type));
    const prom = await startPrometheus({ targets: [target], scrapeIntervalSeconds: 1 });
    try {
      await prom.waitForScrape();
      const names = await prom.query(`count by (__name__) ({job="${prom.job}"})`);
      const scraped = new Map(names.map((s) => [s.metric.__name__, Number(s.value[1])]));
      const missing = expected.filter((n) => !scraped.has(n));
      expect(missing, prom.log()).toEqual([]);
      // the series Prometheus holds are the exposition's, plus its own per-target up and scrape_*
      const ours = expected.reduce((s, n) => s + (scraped.get(n) ?? 0), 0);
      const exposed = [...families.values()].reduce((s, f) => s + f.labels.length, 0);
      expect(ours).toBe(exposed);
      const running = await prom.query('vllm:num_requests_running{model_name="mixtral-8x7b",engine="0"}');
      expect(running).toHaveLength(1);
      const failedOrSpare = await prom.query('sum by (state) (rackemu_chip_state)');
      const byState = Object.fromEntries(failedOrSpare.map((s) => [s.metric.state, Number(s.value[1])]));
      expect(byState.spare).toBe(64);
      expect(byState.failed).toBe(1);
      expect(byState.up + (byState.idle ?? 0)).toBe(511);
    } finally {
      await prom.stop();
    }
  });

  it('metrics - the series count for 576 chips stays bounded: one series per chip, never chip x chip', async () => {
    const families = await seriesByFamily(metrics);
    const allowed = new Set(['rack', 'node', 'chip', 'cpu', 'kind', 'state', 'reason']);
    allowed.add('model_name').add('engine').add('finished_reason').add('topology').add('fidelity').add('le');
    let total = 0;
    for (const [name, f] of families) {
      total += f.labels.length;
      const names = new Set(f.labels.flatMap((l) => Object.keys(l)));
      expect(
        [...names].filter((k) => !allowed.has(k)),
        name,
      ).toEqual([]);
      const chipIds = new Set(f.labels.map((l) => l.chip).filter((c) => c !== undefined));
      if (chipIds.size > 0) {
        // a per-chip family: at most one series per chip and bounded label (kind/state) value
        expect(chipIds.size, name).toBeLessThanOrEqual(fabric.chipCount);
        expect(f.labels.length, name).toBeLessThanOrEqual(2 * fabric.chipCount);
        for (const c of chipIds) expect(String(c)).toMatch(/^r\d+\.n\d+\.c\d+$/);
      }
    }
    expect(families.get('rackemu_chip_state')?.labels).toHaveLength(576);
    expect(families.get('rackemu_chip_sram_used_bytes')?.labels).toHaveLength(576);
    expect(families.get('rackemu_host_cpu_busy_seconds_total')?.labels).toHaveLength(72 * 2);
    expect(await value(metrics, 'rackemu_step_virtual_seconds_total', { kind: 'decode' })).toBeGreaterThan(0);
    // docs/metrics.md gives this count; it grows with chips, never with requests or chip pairs
    expect(total).toBeLessThan(5000);
    console.log(`metrics: ${families.size} families, ${total} series on groq-576`);
  });

  it('metrics - the vLLM aliases carry the same values as the rackemu families', async () => {
    const m = metrics;
    expect(await value(m, 'vllm:generation_tokens_total')).toBe(await value(m, 'rackemu_generation_tokens_total'));
    expect(await value(m, 'vllm:prompt_tokens_total')).toBe(await value(m, 'rackemu_prompt_tokens_total'));
    expect(await value(m, 'vllm:request_success_total', { finished_reason: 'length' })).toBe(31);
    expect(await value(m, 'vllm:request_success_total', { finished_reason: 'abort' })).toBe(1);
    expect(await value(m, 'vllm:kv_cache_usage_perc')).toBe(await value(m, 'rackemu_kv_cache_usage_ratio'));
    const itl = await histogram(m, 'vllm:inter_token_latency_seconds');
    const ours = await histogram(m, 'rackemu_inter_token_latency_virtual_seconds');
    expect(itl.count).toBeGreaterThan(0);
    expect(itl).toEqual(ours);
    expect(await histogram(m, 'vllm:time_per_output_token_seconds')).toEqual(itl);
  });

  it('metrics - a token is counted once whether or not the engine reports it as it comes', async () => {
    const m = new ServingMetrics({ modelName: 'm' });
    m.tokenGenerated({ requestId: 'a', index: 0, tokenId: 1, virtualMs: 10 }, 0);
    m.tokenGenerated({ requestId: 'a', index: 1, tokenId: 1, virtualMs: 12 }, 30);
    m.tokenGenerated({ requestId: 'a', index: 2, tokenId: 1, virtualMs: 14 }, 60);
    m.requestFinished(result('a', 5, { ttftMs: 10, tpotMs: 2 }));
    m.requestFinished(result('b', 5, { ttftMs: 10, tpotMs: 2 }));
    expect(await value(m, 'rackemu_generation_tokens_total')).toBe(10);
    expect(await value(m, 'vllm:generation_tokens_total')).toBe(10);
    // 'a' reported two gaps of 2 ms itself, 'b' gets its four from its mean
    const virtual = await histogram(m, 'rackemu_inter_token_latency_virtual_seconds');
    expect(virtual.count).toBe(6);
    expect(virtual.sum).toBeCloseTo(0.012, 9);
    const wall = await histogram(m, 'rackemu_inter_token_latency_wall_seconds');
    expect(wall.sum).toBeCloseTo(0.06 + 4 * 0.025, 9);
  });

  it('metrics - a chip that fails moves its single state series, and the state counts follow', async () => {
    const m = new ServingMetrics({ modelName: 'm' });
    const chips = chipsOfPlan(plan, fabric);
    m.setChips(chips);
    m.setChips(chipsOfPlan(plan, fabric, ['r3.n2.c5']));
    const states = (await seriesByFamily(m)).get('rackemu_chip_state')?.labels ?? [];
    expect(states).toHaveLength(576);
    expect(states.filter((l) => l.chip === 'r3.n2.c5')).toEqual([
      { rack: 'r3', node: 'r3.n2', chip: 'r3.n2.c5', state: 'failed' },
    ]);
    expect(await value(m, 'rackemu_chips', { state: 'failed' })).toBe(1);
    expect(await value(m, 'rackemu_chips', { state: 'spare' })).toBe(64);
    // a snapshot without a chip drops its series
    m.setChips(chips.filter((c) => !c.chipId.startsWith('r7.')));
    expect((await seriesByFamily(m)).get('rackemu_chip_sram_used_bytes')?.labels).toHaveLength(504);
  });

  it("metrics - the Plan's link traffic is counted with each step, at scrape time", async () => {
    const m = new ServingMetrics({ modelName: 'm' });
    const model = linkTrafficOfPlan(plan, fabric);
    m.setLinkModel(model);
    const decodeS = plan.steps.decode.lengthTicks / (plan.topology.chip.clock_mhz * 1e6);
    for (let i = 0; i < 10; i++) m.stepRan({ kind: 'decode', activeRows: 1, rows: 1, virtualSeconds: decodeS });
    const perStep = model.perStep.decode.reduce((s, x) => s + x.bytes, 0);
    const linkBytes = plan.steps.decode.transfers.reduce(
      (s, tr) => s + tr.bytes * tr.links.filter((id) => !fabric.links[id].name.endsWith(':down')).length,
      0,
    );
    expect(perStep).toBe(linkBytes);
    expect(await value(m, 'rackemu_link_transmit_bytes_total')).toBe(10 * perStep);
    // a second scrape adds nothing new
    expect(await value(m, 'rackemu_link_transmit_bytes_total')).toBe(10 * perStep);
    const ratios = (await m.registry.getSingleMetric('rackemu_link_utilisation_ratio')?.get())?.values ?? [];
    expect(ratios).toHaveLength(16);
    for (const r of ratios) {
      expect(r.value).toBeGreaterThanOrEqual(0);
      expect(r.value).toBeLessThanOrEqual(1);
    }
    expect(Math.max(...ratios.map((r) => r.value))).toBeGreaterThan(0);
    expect(await value(m, 'rackemu_links')).toBe(fabric.links.length);
  });

  it('metrics - host CPU totals become counters, and a restarted agent starts a new total', async () => {
    const m = new ServingMetrics({ modelName: 'm' });
    m.hostCpu([{ hostId: 'r1.n2', cpu: 0, busySeconds: 1.5 }], 0.1);
    m.hostCpu([{ hostId: 'r1.n2', cpu: 0, busySeconds: 2.0 }], 0.3);
    expect(await value(m, 'rackemu_host_cpu_busy_seconds_total', { node: 'r1.n2', cpu: '0' })).toBeCloseTo(2.0, 9);
    m.hostCpu([{ hostId: 'r1.n2', cpu: 0, busySeconds: 0.5 }], 0.05);
    expect(await value(m, 'rackemu_host_cpu_busy_seconds_total', { rack: 'r1' })).toBeCloseTo(2.5, 9);
    expect(await value(m, 'rackemu_host_agent_cpu_seconds_total')).toBeCloseTo(0.35, 9);
  });

  it("metrics - ServingMetrics is the engine's observer", async () => {
    const m = new ServingMetrics({ modelName: 'm' });
    m.setPlan(plan, fabric);
    const observer: EngineObserver = m;
    observer.requestQueued?.();
    observer.requestAdmitted?.(0.001);
    const decodeS = plan.steps.decode.lengthTicks / (plan.topology.chip.clock_mhz * 1e6);
    observer.stepRan?.({ kind: 'decode', activeRows: 1, rows: 1, virtualSeconds: decodeS });
    observer.requestFinished?.(result('x', 3));
    observer.requestFailed?.();
    expect(await value(m, 'rackemu_step_virtual_seconds_total', { kind: 'decode' })).toBeCloseTo(decodeS, 12);
    expect(await value(m, 'rackemu_requests_finished_total', { reason: 'abort' })).toBe(1);
    expect(await value(m, 'rackemu_requests_admitted_total')).toBe(1);
  });

  it('metrics - Node.js process metrics are opt-in and pass promtool beside ours', async () => {
    expect(await new ServingMetrics({ modelName: 'm' }).metrics()).not.toContain('process_cpu_seconds_total');
    const text = await new ServingMetrics({ modelName: 'm', processMetrics: true }).metrics();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_heap_size_used_bytes');
    expect(problemsBesidesVllmNames(promtoolCheckMetrics(text))).toEqual([]);
  });

  it('metrics - the Prometheus helper removes its process and directory when a scrape never comes', async () => {
    const port = await freePort(); // nothing listens there
    let dir = '';
    let pid: number | undefined;
    await expect(
      withPrometheus({ targets: [`127.0.0.1:${port}`] }, async (prom) => {
        dir = prom.dir;
        pid = prom.pid;
        expect(existsSync(dir)).toBe(true);
        await prom.waitForScrape(1500);
      }),
    ).rejects.toThrow(/not as expected after 1500 ms/);
    expect(existsSync(dir)).toBe(false);
    expect(() => process.kill(pid ?? 0, 0)).toThrow();
  });
});
