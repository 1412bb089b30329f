import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ViewFaultEvent, ViewLayout, ViewUpdate } from '../src/view/index.js';
import { ROOT, topo } from './helpers/cli.js';

// `rackemu experiment run --watch 0`: the rack view of an experiment, read as a page would read it
// (GET /view/events, server-sent events) from the moment the server says where it listens to its end.
const EXPERIMENT = `
name: watch-one-crash
topology: ${topo('mini-2rack')}
model: mixtral-tiny
fidelity: timing
set: { chip.sram_mib: 0.5 }
plan: { batch: 4, context: 64, layout_search: classic }
workload: { requests: 8, prompt_tokens: 3, max_new_tokens: 8, concurrency: 4, seed: 1 }
faults:
  - { kind: chip-crash, target: r0.n1.c2, at: { request: 2, token: 2 } }
expect: { lost_requests: 0, all_detected: true }
`;

/** The named events of a server-sent event stream, until it ends. */
async function readEvents(url: string): Promise<{ event: string; data: string }[]> {
  const r = await fetch(url);
  expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await r.text();
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('event: '))
    .map((e) => {
      const [head, data] = e.split('\n');
      return { event: head.slice('event: '.length), data: data.slice('data: '.length) };
    });
}

describe('view', () => {
  it('view - experiment run --watch serves the rack view of both runs: the Plan, steps, the fault detected and recovered, then the end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rackemu-watch-'));
    const file = join(dir, 'watch.yaml');
    writeFileSync(file, EXPERIMENT);
    const child = spawn(
      process.execPath,
      [`${ROOT}bin/rackemu.js`, 'experiment', 'run', file, '--watch', '0', '--watchdog-ms', '4000'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RACKEMU_LOG: 'warn' } },
    );
    let err = '';
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        err += s;
        const m = /rack view on (http:\/\/\S+)\//.exec(err);
        if (m) resolve(m[1]);
      });
      void exited.then((code) => reject(new Error(`exited ${code} before the view listened:\n${err}`)));
    });
    const events = await readEvents(`${url}/view/events`);
    expect(await exited, `${out}\n${err}`).toBe(0);
    const layouts = events.filter((e) => e.event === 'layout').map((e) => JSON.parse(e.data) as ViewLayout);
    const updates = events.filter((e) => e.event === 'update').map((e) => JSON.parse(e.data) as ViewUpdate);
    expect(events[events.length - 1].event).toBe('end');
    expect(layouts[0]).toMatchObject({ topology: 'mini-2rack', model: 'mixtral-tiny', fidelity: 'timing' });
    expect(layouts[0].chips).toHaveLength(24);
    // the re-plan after the crash sends a second layout, with r0.n1 retired
    const last = layouts[layouts.length - 1];
    expect(last.planId).toBeGreaterThan(layouts[0].planId);
    expect(last.chips.filter((c) => c.retired).map((c) => c.id)).toEqual([
      'r0.n1.c0',
      'r0.n1.c1',
      'r0.n1.c2',
      'r0.n1.c3',
    ]);
    expect(updates.reduce((n, u) => n + u.steps.length, 0)).toBeGreaterThan(0);
    const faults: ViewFaultEvent[] = updates.flatMap((u) => u.faults);
    expect(faults.map((f) => [f.what, f.kind])).toEqual([
      ['injected', 'chip-crash'],
      ['detected', 'chip-crash'],
      ['recovered', 'chip-crash'],
    ]);
    expect(faults[1]).toMatchObject({ target: 'r0.n1.c2', detail: 'worker-exit: chip r0.n1.c2' });
    expect(faults[2]).toMatchObject({ target: 'r0.n2' });
    const final = updates[updates.length - 1];
    expect(final.summary.faults).toEqual({ injected: 1, detected: 1, recovered: 1 });
    expect(final.summary.finished).toBe(16); // the baseline's 8 requests and the faulted run's 8
    expect(final.states[6]).toBe('f'); // r0.n1.c2: rack 0, node 1, chip 2 of 4
  }, 120_000);
});
