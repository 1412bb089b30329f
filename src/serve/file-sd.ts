import { rmSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { entityLabels } from '../control/metrics-plan.js';

/**
 * The Prometheus `file_sd` file of `rackemu serve --metrics-file-sd FILE` (docs/serving.md, "Metrics
 * targets"): every /metrics of the deployment as a target group, the coordinator's and, with
 * --isolation process, each host-agent process's. Prometheus re-reads the file when it changes, so it
 * is replaced atomically (a temporary file in the same directory, then rename) and removed on shutdown.
 */

/** One target group of a file_sd file: `host:port` targets and the labels Prometheus gives their series. */
export interface FileSdGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

/** `host:port` as Prometheus scrapes it: a wildcard bind address becomes this machine's host name. */
export function scrapeTarget(host: string, port: number | string): string {
  const h = WILDCARDS.has(host) ? hostname() : host.replace(/^\[(.*)\]$/, '$1');
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

/** The target groups: the coordinator (`role="coordinator"`), then each host agent (`role="host"`, `rack`, `node`). */
export function fileSdGroups(
  coordinator: { readonly host: string; readonly port: number | string },
  hosts: readonly { readonly hostId: string; readonly url: string }[],
): FileSdGroup[] {
  const groups: FileSdGroup[] = [
    { targets: [scrapeTarget(coordinator.host, coordinator.port)], labels: { role: 'coordinator' } },
  ];
  for (const h of hosts) {
    const u = new URL(h.url);
    const labels: Record<string, string> = { role: 'host', ...entityLabels(h.hostId) };
    if (u.pathname !== '/metrics') labels.__metrics_path__ = u.pathname;
    groups.push({ targets: [scrapeTarget(u.hostname, u.port)], labels });
  }
  return groups;
}

/** Writes and removes one file_sd file; a process that exits without remove() still removes it. */
export class FileSdFile {
  private written = false;
  private readonly onExit = () => rmSync(this.path, { force: true });

  constructor(readonly path: string) {}

  /** Replaces the file's content atomically: Prometheus never reads a half-written file. */
  async write(groups: readonly FileSdGroup[]): Promise<void> {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
    try {
      await writeFile(tmp, `${JSON.stringify(groups, null, 2)}\n`);
      await rename(tmp, this.path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    if (!this.written) process.once('exit', this.onExit);
    this.written = true;
  }

  async remove(): Promise<void> {
    if (!this.written) return;
    this.written = false;
    process.off('exit', this.onExit);
    await rm(this.path, { force: true });
  }
}
