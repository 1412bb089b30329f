import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname, tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { ChipOutcome } from '../src/control/host-agent.js';
import { HostMetrics, listenMetrics } from '../src/control/host-metrics.js';
import { fileSdGroups } from '../src/serve/file-sd.js';
import {
  problemsBesidesVllmNames,
  promtoolCheckMetrics,
  startPrometheus,
  type PrometheusServer,
  type PromSample,
} from './helpers/prometheus.js';
import { post, startServe, tinyArgs, waitReady } from './serve-fixtures.js';

/** What every host-agent process exports besides prom-client's process metrics (docs/metrics.md). */
const HOST_FAMILIES = [
  'rackemu_host_info',
  'rackemu_host_chip_state',
  'rackemu_host_chip_runs_total',
  'rackemu_host_chip_run_failures_total',
  'rackemu_host_chip_frames_sent_total',
  'rackemu_host_chip_frame_bytes_sent_total',
  'rackemu_host_chip_frames_decoded_total',
  'rackemu_host_chip_transport_messages_sent_total',
  'rackemu_host_chip_transport_bytes_sent_total',
  'rackemu_host_chip_schedule_violations_total',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_seconds',
];

interface Group {
  targets: string[];
  labels: Record<string, string>;
}

const value = (r: PromSample[]) => Number(r[0]?.value[1] ?? NaN);

describe('serve with host-agent processes', () => {
  it('serve - each host-agent process serves its own /metrics, listed with the coordinator in a file_sd file that a real Prometheus scrapes; SIGTERM removes the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rackemu-file-sd-'));
    const file = join(dir, 'rackemu.json');
    // Prometheus applies targets on a 5 s tick: start it while the deployment loads. honor_labels as
    // docs/serving.md advises: the hosts' series carry the target's rack and node labels themselves
    const starting = startPrometheus({ fileSd: [file], honorLabels: true });
    starting.catch(() => undefined);
    const args = ['--isolation', 'process', '--transport', 'nats', '--nats', 'spawn', '--metrics-file-sd', file];
    const server = await startServe([...tinyArgs(4), ...args]);
    let prom: PrometheusServer | null = null;
    try {
      prom = await starting;
      await waitReady(server.url);
      const groups = JSON.parse(await readFile(file, 'utf8')) as Group[];
      expect(groups[0]).toEqual({ targets: [new URL(server.url).host], labels: { role: 'coordinator' } });
      const hosts = groups.slice(1);
      expect(hosts.length).toBeGreaterThan(1); // mini-2rack: a host agent per node
      for (const h of hosts) {
        expect(h.targets).toHaveLength(1);
        expect(h.targets[0]).toMatch(/^127\.0\.0\.1:\d+$/);
        expect(h.labels).toEqual({ role: 'host', rack: h.labels.node.split('.')[0], node: h.labels.node });
      }
      const nodes = hosts.map((h) => h.labels.node).sort();
      expect(new Set(nodes).size).toBe(hosts.length);
      expect(nodes).toEqual(
        server
          .events('host metrics listening')
          .map((e) => e.host)
          .sort(),
      );

      const prompts = [[3, 1, 4, 1, 5], [2, 7], [9, 9, 9, 9, 9, 9, 9], [1]];
      const done = await Promise.all(
        prompts.map((prompt) => post(`${server.url}/v1/completions`, { prompt, max_tokens: 6 })),
      );
      expect(done.map((r) => r.status)).toEqual([200, 200, 200, 200]);

      // each host's own exposition: its families, its node, and promtool's lint passes
      for (const h of hosts) {
        const text = await (await fetch(`http://${h.targets[0]}/metrics`)).text();
        for (const family of HOST_FAMILIES) expect(text).toContain(`# TYPE ${family} `);
        expect(text).toContain(`rackemu_host_info{rack="${h.labels.rack}",node="${h.labels.node}"} 1`);
        expect(text).not.toMatch(/^rackemu_(?!host_)/m); // no coordinator family on a host
        const check = promtoolCheckMetrics(text);
        expect(problemsBesidesVllmNames(check)).toEqual([]);
        expect(check.code).toBe(0);
      }

      // Prometheus found every target through the file and scrapes it
      const up = await prom.waitFor('up{role="host"} == 1', (r) => r.length === hosts.length, 20_000);
      expect(up.map((s) => s.metric.node).sort()).toEqual(nodes);
      await prom.waitFor('up{role="coordinator"} == 1', (r) => r.length === 1);
      for (const family of HOST_FAMILIES) {
        await prom.waitFor(`count by (node) (${family}{role="host"})`, (r) => r.length === hosts.length);
      }
      await prom.waitFor('rackemu_requests_finished_total{role="coordinator", reason="length"}', (r) => value(r) === 4);
      // the chips' frames, counted by their host processes, add up to the coordinator's deployment-wide count
      const frames = await prom.waitFor(
        'sum(rackemu_host_chip_frames_sent_total{role="host"}) - sum(rackemu_frames_total{role="coordinator"})',
        (r) => value(r) === 0,
      );
      expect(frames).toHaveLength(1);
      expect(value(await prom.query('sum(rackemu_host_chip_frames_sent_total)'))).toBeGreaterThan(0);
      const chipsUp = await prom.query('count by (node) (rackemu_host_chip_state{state="up"})');
      expect(chipsUp.map((s) => [s.metric.node, value([s])]).sort()).toEqual(nodes.map((n) => [n, 4]));
      // the series' own rack and node equal the target's: merged, no exported_* copies
      expect(await prom.query('{exported_node!=""} or {exported_rack!=""}')).toEqual([]);
      const info = await prom.query('rackemu_host_info');
      expect(info.map((s) => s.metric.node).sort()).toEqual(nodes);

      expect((await server.stop()).code).toBe(0);
      expect(existsSync(file)).toBe(false);
      expect(server.events('drain finished')).toHaveLength(1);
    } finally {
      await server.stop();
      await prom?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('host agent metrics', () => {
  const outcome = (chipId: string, frames: number, violations: ('late' | 'missing')[] = []): ChipOutcome => ({
    chipId,
    result: {
      chipId,
      violations: violations.map((kind) => ({
        kind,
        step: 0,
        tensor: 't',
        src: 'a',
        dst: chipId,
        tick: 0,
        message: '',
      })),
      framesSent: frames,
      bytesSent: frames * 100,
      framesDecoded: frames,
      samples: null,
      ecc: [],
    },
    transport: {
      framesSent: frames,
      bytesSent: frames * 110,
      framesReceived: 0,
      bytesReceived: 0,
      creditStalls: 0,
      sleeps: 0,
      messagesSent: 1,
      queued: 0,
      maxInFlight: 0,
    },
    error: null,
  });

  it("serve - a host agent sums its chips' run results, moves a dead chip's state series to failed, and serves only GET /metrics", async () => {
    const m = new HostMetrics('r1.n2', ['r1.n2.c0', 'r1.n2.c1'], { processMetrics: false });
    m.chipUp('r1.n2.c0');
    m.chipUp('r1.n2.c1');
    m.runEnded([outcome('r1.n2.c0', 3, ['late']), outcome('r1.n2.c1', 2)]);
    m.runEnded([
      outcome('r1.n2.c0', 4),
      {
        chipId: 'r1.n2.c1',
        result: null,
        transport: null,
        error: { code: 'RACKEMU_ERR_WORKER', message: 'x', details: {} },
      },
    ]);
    m.chipFailed('r1.n2.c1');
    const listener = await listenMetrics(m.registry, '127.0.0.1');
    try {
      expect(listener.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const text = await (await fetch(listener.url)).text();
      const c0 = 'rack="r1",node="r1.n2",chip="r1.n2.c0"';
      const c1 = 'rack="r1",node="r1.n2",chip="r1.n2.c1"';
      for (const line of [
        'rackemu_host_info{rack="r1",node="r1.n2"} 1',
        `rackemu_host_chip_frames_sent_total{${c0}} 7`,
        `rackemu_host_chip_frame_bytes_sent_total{${c0}} 700`,
        `rackemu_host_chip_transport_bytes_sent_total{${c0}} 770`,
        `rackemu_host_chip_runs_total{${c0}} 2`,
        `rackemu_host_chip_runs_total{${c1}} 1`,
        `rackemu_host_chip_run_failures_total{${c1}} 1`,
        `rackemu_host_chip_schedule_violations_total{${c0},kind="late"} 1`,
        `rackemu_host_chip_schedule_violations_total{${c1},kind="missing"} 0`,
        `rackemu_host_chip_state{${c0},state="up"} 1`,
        `rackemu_host_chip_state{${c1},state="failed"} 1`,
      ])
        expect(text).toContain(`${line}\n`);
      expect(text).not.toContain(`{${c1},state="up"}`);
      expect((await fetch(listener.url.replace('/metrics', '/'))).status).toBe(404);
      expect((await fetch(listener.url, { method: 'POST' })).status).toBe(404);
    } finally {
      await listener.close();
    }
  });

  it("serve - file_sd targets: a wildcard bind address is listed under this machine's host name", () => {
    const groups = fileSdGroups({ host: '0.0.0.0', port: '8080' }, [
      { hostId: 'r0.n1', url: 'http://[::]:9100/metrics' },
      { hostId: 'r2.n0', url: 'http://[::1]:9101/metrics' },
    ]);
    expect(groups).toEqual([
      { targets: [`${hostname()}:8080`], labels: { role: 'coordinator' } },
      { targets: [`${hostname()}:9100`], labels: { role: 'host', rack: 'r0', node: 'r0.n1' } },
      { targets: ['[::1]:9101'], labels: { role: 'host', rack: 'r2', node: 'r2.n0' } },
    ]);
  });
});
