import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALL,
  allPanels,
  BUILTIN_VARIABLES,
  dashboardQueries,
  datasourceRefs,
  documentedFamilies,
  labelValuesAsQuery,
  loadDashboards,
  loadYaml,
  metricNames,
  referencedVariables,
  ROOT,
  substitute,
  variableQuery,
} from './helpers/grafana.js';
import { startPrometheus, type PrometheusServer, type PromSample } from './helpers/prometheus.js';
import { post, startServe, tinyArgs, waitReady, type ServeProcess } from './serve-fixtures.js';

/**
 * grafana/: provisioning and dashboards, proven without Grafana. The structure of each dashboard as
 * Grafana reads it, then every query it runs, with Grafana's variables substituted, against a real
 * Prometheus that scraped a live `rackemu serve` (host-agent processes, as docs/serving.md sets them up).
 */

interface Datasources {
  apiVersion: number;
  datasources: { name: string; uid: string; type: string; url: string; access: string }[];
}
interface Providers {
  apiVersion: number;
  providers: { name: string; type: string; folder?: string; options: { path: string } }[];
}

const datasources = loadYaml<Datasources>('provisioning', 'datasources', 'prometheus.yaml');
const providers = loadYaml<Providers>('provisioning', 'dashboards', 'rackemu.yaml');
const dashboards = loadDashboards();
const UID = 'rackemu-prometheus';
const GRAFANA_BUILTIN = { type: 'grafana', uid: '-- Grafana --' };

/** The fault-injection families (docs/metrics.md, "Fault families"): the serving coordinator exports them. */
const FAULT_FAMILIES = [
  'rackemu_faults_injected_total',
  'rackemu_faults_detected_total',
  'rackemu_faults_recovered_total',
  'rackemu_recovery_seconds',
];

/** Bearer token of the live serve's admin routes (POST /admin/faults). */
const ADMIN = 'grafana-test-admin';

describe('grafana provisioning and dashboard structure', () => {
  it('grafana - provisioning: one Prometheus datasource with a fixed uid, and a file provider for the dashboards', () => {
    expect(datasources.apiVersion).toBe(1);
    expect(datasources.datasources).toHaveLength(1);
    const ds = datasources.datasources[0];
    expect(ds).toMatchObject({ uid: UID, type: 'prometheus', access: 'proxy' });
    expect(ds.url).toBe('${RACKEMU_PROMETHEUS_URL}'); // Grafana expands it when it starts
    expect(providers.apiVersion).toBe(1);
    expect(providers.providers).toHaveLength(1);
    expect(providers.providers[0]).toMatchObject({ type: 'file', folder: 'rackemu' });
    expect(providers.providers[0].options.path).toMatch(/^\//);
    expect(dashboards.map((d) => d.file)).toEqual([
      'control-plane.json',
      'faults.json',
      'inference.json',
      'rack-overview.json',
    ]);
    const uids = dashboards.map((d) => d.dashboard.uid);
    expect(new Set(uids).size).toBe(uids.length);
    const titles = dashboards.map((d) => d.dashboard.title);
    expect(new Set(titles).size).toBe(titles.length);
  });

  describe.each(dashboards)('$file', ({ dashboard: d }) => {
    const panels = allPanels(d);
    const queries = dashboardQueries(d);

    it('grafana - schema version, unique panel ids, refIds unique per panel, panels inside the 24-column grid', () => {
      expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
      expect(d.uid).toMatch(/^rackemu-[a-z-]+$/);
      const ids = panels.map((p) => p.id);
      expect(ids.every((id) => Number.isInteger(id))).toBe(true);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of panels) {
        if (p.type === 'row') continue;
        const refIds = (p.targets ?? []).map((t) => t.refId);
        expect(refIds.length, `panel ${p.id} has queries`).toBeGreaterThan(0);
        expect(new Set(refIds).size, `refIds of panel ${p.id}`).toBe(refIds.length);
        expect((p.targets ?? []).every((t) => t.expr.trim().length > 0)).toBe(true);
        const { x, y, w, h } = p.gridPos;
        expect(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 24, `gridPos of panel ${p.id}`).toBe(true);
      }
      // no two panels overlap
      const cells = new Set<string>();
      for (const { gridPos: g, id } of panels) {
        for (let i = g.x; i < g.x + g.w; i++) {
          for (let j = g.y; j < g.y + g.h; j++) {
            expect(cells.has(`${i},${j}`), `panel ${id} overlaps at ${i},${j}`).toBe(false);
            cells.add(`${i},${j}`);
          }
        }
      }
    });

    it('grafana - every datasource reference resolves to the provisioned Prometheus', () => {
      const refs = datasourceRefs(d);
      expect(refs.length).toBeGreaterThan(0);
      for (const { path, ref } of refs) {
        if (JSON.stringify(ref) === JSON.stringify(GRAFANA_BUILTIN)) continue; // Grafana's own annotations
        expect(ref, path).toEqual({ type: 'prometheus', uid: UID });
      }
      // every query panel names its datasource (a panel without one would use whatever is the default)
      for (const p of panels)
        if (p.type !== 'row') expect(p.datasource, `panel ${p.id}`).toEqual({ type: 'prometheus', uid: UID });
    });

    it('grafana - template variables referenced exist, and each variable is used by a panel', () => {
      const defined = d.templating.list.map((v) => v.name);
      const used = new Set<string>();
      const exprs = [...queries.map((q) => q.expr), ...d.templating.list.map(variableQuery)];
      for (const expr of exprs) {
        for (const name of referencedVariables(expr)) {
          expect([...defined, ...BUILTIN_VARIABLES], `$${name} in ${expr}`).toContain(name);
          used.add(name);
        }
      }
      for (const v of d.templating.list) {
        expect(v.type).toBe('query');
        expect(v.datasource).toEqual({ type: 'prometheus', uid: UID });
        expect(() => labelValuesAsQuery(variableQuery(v))).not.toThrow();
        const inPanels = queries.some((q) => referencedVariables(q.expr).includes(v.name));
        expect(inPanels, `$${v.name} is used by a panel`).toBe(true);
      }
    });

    it('grafana - queries read only families docs/metrics.md documents (and standard process families)', () => {
      const documented = documentedFamilies(readFileSync(join(ROOT, 'docs', 'metrics.md'), 'utf8'));
      const standard = /^(up|process_\w+|nodejs_\w+)$/;
      const unknown = queries
        .flatMap((q) => metricNames(q.expr))
        .filter(
          (n) => !standard.test(n) && !documented.has(n) && !documented.has(n.replace(/_(bucket|sum|count)$/, '')),
        );
      expect(unknown).toEqual([]);
    });
  });

  it('grafana - the rack overview has a chip grid per node and slot; per-entity panels use rack, node and chip', () => {
    const rack = dashboards.find((d) => d.file === 'rack-overview.json')!.dashboard;
    const grids = allPanels(rack).filter((p) => p.transformations?.some((t) => t.id === 'groupingToMatrix'));
    expect(grids.map((p) => p.title)).toEqual(['Chip state', 'SRAM used per chip', 'Bytes sent per chip']);
    for (const g of grids) {
      expect(g.type).toBe('table');
      expect(g.transformations![0].options).toMatchObject({ rowField: 'node', columnField: 'slot' });
      expect(g.targets![0]).toMatchObject({ format: 'table', instant: true });
      expect(g.targets![0].expr).toContain('label_replace(');
    }
    expect(rack.templating.list.map((v) => v.name)).toEqual(['rack', 'node', 'chip']);
    const control = dashboards.find((d) => d.file === 'control-plane.json')!.dashboard;
    expect(control.templating.list.map((v) => v.name)).toEqual(['rack', 'node', 'chip']);
  });

  it('grafana - the faults dashboard reads every fault family and marks fault events as annotations', () => {
    const faults = dashboards.find((d) => d.file === 'faults.json')!.dashboard;
    const exprs = dashboardQueries(faults).map((q) => q.expr);
    for (const family of FAULT_FAMILIES)
      expect(
        exprs.some((e) => e.includes(family)),
        family,
      ).toBe(true);
    const annotations = faults.annotations.list.filter((a) => a.target?.expr !== undefined);
    expect(annotations.map((a) => a.name)).toEqual(['Faults injected', 'Faults detected', 'Faults recovered']);
    for (const a of annotations) {
      expect(a.target!.expr).toBe(a.expr); // the legacy top-level copy says the same
      expect(a.target!.refId).toBe('Anno');
    }
  });
});

const number = (s: PromSample) => Number(s.value[1]);

describe('grafana dashboards against a live serve', () => {
  let dir = '';
  let serve: ServeProcess | undefined;
  let starting: Promise<PrometheusServer> | undefined;
  let prom: PrometheusServer;
  let hosts = 0;
  let values: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackemu-grafana-'));
    const file = join(dir, 'rackemu.json');
    // Prometheus applies file_sd targets on a 5 s tick: start it while the deployment loads
    starting = startPrometheus({ fileSd: [file], honorLabels: true });
    starting.catch(() => undefined);
    const args = ['--isolation', 'process', '--transport', 'nats', '--nats', 'spawn', '--metrics-file-sd', file];
    serve = await startServe([...tinyArgs(4), ...args], { RACKEMU_ADMIN_TOKEN: ADMIN });
    prom = await starting;
    await waitReady(serve.url);
    hosts = serve.events('host metrics listening').length;
    expect(hosts).toBeGreaterThan(1);
    // One request first: families whose series appear with the first steps (link bytes, host CPUs) exist
    // and every target is scraped before the load, so that rate() over the window sees the load.
    expect((await post(`${serve.url}/v1/completions`, { prompt: [1, 2, 3], max_tokens: 2 })).status).toBe(200);
    const some = (r: PromSample[]) => r.length > 0;
    await prom.waitFor('up == 1', (r) => r.length === hosts + 1, 20_000);
    await prom.waitFor('rackemu_link_transmit_bytes_total', some, 20_000);
    await prom.waitFor('rackemu_host_cpu_busy_seconds_total', some, 20_000);
    // a fault while the load runs (the clock of the chip that sends the most drifts): detected, recovered
    const [sender] = await prom.query('topk(1, sum by (chip) (rackemu_link_transmit_bytes_total))');
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` };
    const fault = { kind: 'clock-skew', target: sender.metric.chip, ticks: 5000 };
    const armed = await post(`${serve.url}/admin/faults`, fault, auth);
    expect(armed.status, JSON.stringify(armed.json)).toBe(202);
    // a small load: 10 requests at once on 4 batch slots (some wait), prompts of 1-9 tokens, 2-8 tokens each
    const prompts = Array.from({ length: 10 }, (_, i) =>
      Array.from({ length: 1 + (i % 9) }, (_, j) => (7 * i + j) % 50),
    );
    const done = await Promise.all(
      prompts.map((prompt, i) => post(`${serve!.url}/v1/completions`, { prompt, max_tokens: 2 + (i % 7) })),
    );
    expect(done.map((r) => r.status)).toEqual(prompts.map(() => 200));
    // Prometheus saw the end of the load, on the coordinator and on every host agent
    const one = (value: number) => (r: PromSample[]) => r.length === 1 && number(r[0]) === value;
    await prom.waitFor('sum(rackemu_requests_finished_total{role="coordinator"})', one(11), 30_000);
    await prom.waitFor('sum(rackemu_host_chip_frames_sent_total) - sum(rackemu_frames_total)', one(0), 20_000);
    await prom.waitFor('count(rate(rackemu_generation_tokens_total[1m]) > 0)', one(1), 20_000);
    await prom.waitFor('rate(rackemu_link_transmit_bytes_total[1m]) > 0', some, 20_000);
    await prom.waitFor('rate(rackemu_host_cpu_busy_seconds_total[1m]) > 0', some, 20_000);
    await prom.waitFor('sum(rackemu_faults_recovered_total)', one(1), 20_000);
    // a chip that works: the one that sends the most, with its node and rack
    const [busiest] = await prom.query('topk(1, sum by (rack, node, chip) (rackemu_link_transmit_bytes_total))');
    values = { rack: busiest.metric.rack, node: busiest.metric.node, chip: busiest.metric.chip };
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
    await (await starting?.catch(() => undefined))?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('grafana - every panel and annotation query, variables substituted, returns data (a fault was injected and recovered from)', async () => {
    // the check has teeth: Prometheus refuses a query that does not parse
    await expect(prom.query('sum(rate(rackemu_frames_total[1m])')).rejects.toThrow(/bad_data|parse/);
    const failures: string[] = [];
    let checked = 0;
    for (const { dashboard } of dashboards) {
      for (const q of dashboardQueries(dashboard)) {
        const expr = substitute(q.expr, values);
        expect(referencedVariables(expr), `${q.where}: ${expr}`).toEqual([]);
        let result: PromSample[];
        try {
          result = await prom.query(expr); // rejects unless Prometheus parsed and ran it
        } catch (e) {
          failures.push(`${q.where}: ${String(e)}`);
          continue;
        }
        checked++;
        if (result.length === 0) failures.push(`${q.where}: no data for ${expr}`);
        else if (!result.some((s) => Number.isFinite(number(s)))) failures.push(`${q.where}: only NaN for ${expr}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(80);
  });

  it('grafana - the chip grid has one cell per chip, and the variables list every rack, node and chip', async () => {
    const rack = dashboards.find((d) => d.file === 'rack-overview.json')!.dashboard;
    const grid = allPanels(rack).find((p) => p.title === 'Chip state')!;
    const cells = await prom.query(substitute(grid.targets![0].expr, { rack: ALL, node: ALL }));
    const chips = await prom.query('rackemu_chip_state');
    expect(chips.length).toBe(24); // mini-2rack: 2 racks x 3 nodes x 4 chips
    expect(cells).toHaveLength(chips.length);
    const keys = cells.map((c) => `${c.metric.node}/${c.metric.slot}`);
    expect(new Set(keys).size).toBe(cells.length);
    for (const c of cells) expect(c.metric.chip).toBe(`${c.metric.node}.${c.metric.slot}`);

    for (const { dashboard } of dashboards) {
      for (const v of dashboard.templating.list) {
        const { label, expr } = labelValuesAsQuery(substitute(variableQuery(v), values));
        const listed = (await prom.query(expr)).map((s) => s.metric[label]);
        expect(listed, `${dashboard.uid} $${v.name}`).toContain(values[v.name]);
      }
    }
  });
});
