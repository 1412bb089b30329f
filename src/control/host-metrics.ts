import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ChipOutcome } from './host-agent.js';
import { addProcessMetrics, VIOLATION_KINDS } from './metrics-common.js';
import { entityLabels } from './metrics-plan.js';

/**
 * The metrics of one host-agent process (--isolation process, see host-main.ts), served at its own
 * GET /metrics: what this process knows first-hand, under `rackemu_host_*` names that the
 * coordinator's families do not use (docs/metrics.md, "Which process exports what"). Its real process
 * metrics (prom-client's: CPU seconds, RSS, event loop lag), its chips' counters summed from the run
 * results its chip workers report (chips never touch prom-client), its chips' state, and
 * rackemu_host_info. The deployment-wide view stays the coordinator's.
 */

/** What the host agent knows of a chip: its worker is loaded and running, or it died. */
export type HostChipState = 'up' | 'failed';
type ChipLabels = { rack: string; node: string; chip: string };
type CounterName =
  'runs' | 'runFailures' | 'framesSent' | 'frameBytesSent' | 'framesDecoded' | 'transportMessages' | 'transportBytes';

export class HostMetrics {
  readonly registry = new Registry();
  private readonly counters: Record<CounterName, Counter<'rack' | 'node' | 'chip'>>;
  private readonly violations: Counter<'rack' | 'node' | 'chip' | 'kind'>;
  private readonly chipState: Gauge<'rack' | 'node' | 'chip' | 'state'>;
  private readonly labels = new Map<string, ChipLabels>();
  private readonly states = new Map<string, HostChipState>();

  /** `chipIds`: the chips this host agent runs; their counters start at zero. */
  constructor(
    readonly hostId: string,
    chipIds: readonly string[],
    options: { readonly processMetrics?: boolean } = {},
  ) {
    const registers = [this.registry];
    const chip = ['rack', 'node', 'chip'] as const;
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: chip, registers });
    const { rack, node } = entityLabels(hostId);
    new Gauge({
      name: 'rackemu_host_info',
      help: 'The host agent this process is: value 1, its rack and node (host id) as labels.',
      labelNames: ['rack', 'node'],
      registers,
    }).set({ rack, node }, 1);
    this.counters = {
      runs: counter('rackemu_host_chip_runs_total', 'Windows of steps the chip ran to the end.'),
      runFailures: counter('rackemu_host_chip_run_failures_total', 'Windows of steps the chip failed.'),
      framesSent: counter('rackemu_host_chip_frames_sent_total', 'Frames (tensor slices) the chip sent.'),
      frameBytesSent: counter('rackemu_host_chip_frame_bytes_sent_total', 'Tensor bytes of the frames the chip sent.'),
      framesDecoded: counter(
        'rackemu_host_chip_frames_decoded_total',
        'Frames whose header the chip decoded (every frame in numeric fidelity; in timing fidelity those that were not the frame the schedule said came next).',
      ),
      transportMessages: counter(
        'rackemu_host_chip_transport_messages_sent_total',
        "Transport messages that carried the chip's frames (a bundle of frames is one).",
      ),
      transportBytes: counter(
        'rackemu_host_chip_transport_bytes_sent_total',
        "Bytes the chip's transport endpoint sent, headers included.",
      ),
    };
    this.violations = new Counter({
      name: 'rackemu_host_chip_schedule_violations_total',
      help: 'Schedule violations the chip saw in the frames it received, by kind.',
      labelNames: [...chip, 'kind'],
      registers,
    });
    this.chipState = new Gauge({
      name: 'rackemu_host_chip_state',
      help: 'One series per loaded chip, value 1, with the state of its worker (up, failed) as the state label.',
      labelNames: [...chip, 'state'],
      registers,
    });
    for (const chipId of chipIds) {
      const labels = { rack, node, chip: chipId };
      this.labels.set(chipId, labels);
      for (const c of Object.values(this.counters)) c.inc(labels, 0);
      for (const kind of VIOLATION_KINDS) this.violations.inc({ ...labels, kind }, 0);
    }
    if (options.processMetrics ?? true) addProcessMetrics(this.registry);
  }

  private labelsOf(chipId: string): ChipLabels {
    let l = this.labels.get(chipId);
    if (!l) this.labels.set(chipId, (l = { ...entityLabels(chipId), chip: chipId }));
    return l;
  }

  /** The chip's worker is loaded and ready (its state series appears, `up`). */
  chipUp(chipId: string): void {
    this.setState(chipId, 'up');
  }

  /** The chip's worker crashed or exited: its state moves to `failed` (the `up` series goes stale). */
  chipFailed(chipId: string): void {
    this.setState(chipId, 'failed');
  }

  private setState(chipId: string, state: HostChipState): void {
    const labels = this.labelsOf(chipId);
    const prev = this.states.get(chipId);
    if (prev === state) return;
    if (prev !== undefined) this.chipState.remove({ ...labels, state: prev });
    this.chipState.set({ ...labels, state }, 1);
    this.states.set(chipId, state);
  }

  /** A window ran on this host's chips: each chip's run result (per-run deltas) or the error it stopped with. */
  runEnded(outcomes: readonly ChipOutcome[]): void {
    for (const o of outcomes) {
      const labels = this.labelsOf(o.chipId);
      if (o.error !== null) {
        this.counters.runFailures.inc(labels);
        continue;
      }
      const r = o.result;
      this.counters.runs.inc(labels);
      this.counters.framesSent.inc(labels, r.framesSent);
      this.counters.frameBytesSent.inc(labels, r.bytesSent);
      this.counters.framesDecoded.inc(labels, r.framesDecoded);
      this.counters.transportMessages.inc(labels, o.transport.messagesSent);
      this.counters.transportBytes.inc(labels, o.transport.bytesSent);
      for (const v of r.violations) this.violations.inc({ ...labels, kind: v.kind });
    }
  }
}

export interface MetricsListener {
  /** `http://<address>:<port>/metrics` as bound (a wildcard address stays as it is). */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `registry` at GET /metrics on `host` (port 0: a free port); anything else gets 404. Plain
 * node:http: one route, and a host process should not load a web framework for it.
 */
export async function listenMetrics(registry: Registry, host: string, port = 0): Promise<MetricsListener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`${String(e)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const address = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${address}:${addr.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
