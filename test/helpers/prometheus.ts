import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * A real Prometheus (Debian's `prometheus`, installed by scripts/ensure-deps.sh) for tests: started on
 * a free port of 127.0.0.1 with a temporary config and storage directory, queried through its HTTP API,
 * stopped and removed even when a test fails. And `promtool check metrics` on exposition text.
 * Prometheus 2.42 is ready in about 0.1 s but applies new targets on a 5 s tick, so the first scrape
 * comes about 5-6 s after start: start it once per test file, in parallel with other set-up.
 *
 *   const prom = await startPrometheus({ targets: [`127.0.0.1:${port}`] });
 *   try {
 *     await prom.waitForScrape();
 *     const names = await prom.query('count by (__name__) ({job="rackemu"})');
 *   } finally {
 *     await prom.stop();
 *   }
 */

/** Path of a Debian-installed program, looked up on PATH, then /usr/bin and /usr/sbin. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin', '/usr/sbin'];
  for (const dir of dirs) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface PrometheusOptions {
  /** `host:port` targets scraped by one static job. */
  readonly targets?: readonly string[];
  /** Files of a `file_sd_configs` job (JSON or YAML target groups), re-read every second. */
  readonly fileSd?: readonly string[];
  /** Job name (default `rackemu`). */
  readonly job?: string;
  readonly metricsPath?: string;
  /**
   * The job's `honor_labels`: on a clash between a scraped label and a target label, keep the scraped one
   * (default false: Prometheus renames the scraped one `exported_<name>`).
   */
  readonly honorLabels?: boolean;
  /** Scrape interval in seconds (default 1). */
  readonly scrapeIntervalSeconds?: number;
  /** Milliseconds to wait for /-/ready (default 20 000). */
  readonly readyTimeoutMs?: number;
}

/** One element of an instant query's vector result. */
export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: readonly [number, string];
}

export interface PrometheusServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The Prometheus process id. */
  readonly pid: number | undefined;
  readonly job: string;
  /** The temporary directory holding prometheus.yml and the TSDB; removed by stop(). */
  readonly dir: string;
  /** An instant query (`/api/v1/query`); rejects unless Prometheus answers status "success" with a vector. */
  query(promql: string): Promise<PromSample[]>;
  /** Polls `promql` until `accept` likes its result; rejects with the last result after `timeoutMs`. */
  waitFor(promql: string, accept: (r: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  /** Waits until every target of the job was scraped successfully at least once (`up == 1` with samples). */
  waitForScrape(timeoutMs?: number): Promise<void>;
  /** Prometheus's own log so far (for failure messages). */
  log(): string;
  /** SIGTERM (SIGKILL after 5 s), then remove the directory. Safe to call twice. */
  stop(): Promise<void>;
}

function configText(o: PrometheusOptions, job: string): string {
  const interval = `${o.scrapeIntervalSeconds ?? 1}s`;
  const scrape: Record<string, unknown> = {
    job_name: job,
    metrics_path: o.metricsPath ?? '/metrics',
    scrape_interval: interval,
    scrape_timeout: interval,
  };
  if (o.honorLabels) scrape.honor_labels = true;
  if (o.targets?.length) scrape.static_configs = [{ targets: [...o.targets] }];
  if (o.fileSd?.length) scrape.file_sd_configs = [{ files: [...o.fileSd], refresh_interval: '1s' }];
  return stringify({ global: { scrape_interval: interval, evaluation_interval: interval }, scrape_configs: [scrape] });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitReady(url: string, child: ChildProcess, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode}) before ready:\n${log()}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`prometheus not ready after ${timeoutMs} ms:\n${log()}`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function launch(o: PrometheusOptions, binary: string): Promise<PrometheusServer> {
  const job = o.job ?? 'rackemu';
  const dir = await mkdtemp(join(tmpdir(), 'rackemu-prom-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  await writeFile(join(dir, 'prometheus.yml'), configText(o, job));
  const child = spawn(
    binary,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let logText = '';
  const append = (b: Buffer) => {
    logText = (logText + b.toString()).slice(-20_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  // A test process that dies without stop() must not leave Prometheus behind.
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(url, child, o.readyTimeoutMs ?? 20_000, () => logText);
  } catch (e) {
    await stop();
    throw e;
  }

  const query = async (promql: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: unknown };
    };
    if (body.status !== 'success' || body.data?.resultType !== 'vector') {
      throw new Error(`query ${promql}: ${body.status} ${body.error ?? body.data?.resultType}`);
    }
    return body.data.result as PromSample[];
  };
  const waitFor = async (promql: string, accept: (r: PromSample[]) => boolean, timeoutMs = 15_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = await query(promql);
      if (accept(last)) return last;
      if (Date.now() > deadline) {
        throw new Error(`${promql} not as expected after ${timeoutMs} ms: ${JSON.stringify(last)}\n${logText}`);
      }
      await sleep(200);
    }
  };
  const waitForScrape = async (timeoutMs = 15_000) => {
    await waitFor(
      `scrape_samples_scraped{job="${job}"} > 0 and on (instance) up{job="${job}"} == 1`,
      (r) => r.length > 0 && r.length >= (o.targets?.length ?? 1),
      timeoutMs,
    );
  };
  return { url, port, pid: child.pid, job, dir, query, waitFor, waitForScrape, log: () => logText, stop };
}

/**
 * Starts Prometheus and waits until it is ready. A port taken between choosing it and binding it is
 * retried on another port (twice). Throws when the binary is missing.
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const binary = findBinary('prometheus');
  if (!binary) throw new Error('prometheus is not installed: run scripts/ensure-deps.sh');
  for (let attempt = 0; ; attempt++) {
    try {
      return await launch(options, binary);
    } catch (e) {
      if (attempt >= 2 || !String(e).includes('address already in use')) throw e;
    }
  }
}

/** Runs `fn` with a started Prometheus, and stops it whatever happens. */
export async function withPrometheus<T>(
  options: PrometheusOptions,
  fn: (prom: PrometheusServer) => Promise<T>,
): Promise<T> {
  const prom = await startPrometheus(options);
  try {
    return await fn(prom);
  } finally {
    await prom.stop();
  }
}

export interface PromtoolResult {
  /** 0: clean; 3: lint problems; 1: unparsable input. */
  readonly code: number;
  /** One line per lint problem, `<metric name> <problem>`. */
  readonly problems: string[];
  readonly output: string;
}

/** `promtool check metrics` with the exposition text on its standard input. */
export function promtoolCheckMetrics(text: string): PromtoolResult {
  const binary = findBinary('promtool');
  if (!binary) throw new Error('promtool is not installed (Debian package prometheus): run scripts/ensure-deps.sh');
  const r = spawnSync(binary, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const problems = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return { code: r.status ?? -1, problems, output };
}

/**
 * promtool's lint says "metric names should not contain ':'" for every `vllm:` family: those names are
 * vLLM's own (recording-rule style), kept so that vLLM dashboards work. These are the other problems.
 */
export function problemsBesidesVllmNames(r: PromtoolResult): string[] {
  return r.problems.filter((p) => !/^vllm:\S+ metric names should not contain ':'$/.test(p));
}
