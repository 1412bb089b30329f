/**
 * Start-up and memory baseline, in a fresh process: spawn N node:worker_threads workers at once (as the
 * host agents do), wait until every one has posted 'ready', report the wall time and the peak RSS.
 * Usage: node dist/bench/bare-spawn.js N [loaded]  ->  one JSON line. With `loaded`, each worker is
 * the chip worker itself (the bundle the host agents spawn, with their environment), asked for a
 * readback before it has a chip: it answers once its code is loaded.
 */
import { Worker } from 'node:worker_threads';
import { CHIP_ENV, CHIP_WORKER } from '../src/control/host-agent.js';

const n = Number(process.argv[2] ?? 576);
const loaded = process.argv[3] === 'loaded';
const script = loaded ? CHIP_WORKER : new URL('./bare-worker.js', import.meta.url);
const rssBeforeMb = process.memoryUsage().rss / 2 ** 20;
const t0 = performance.now();
const workers: Worker[] = [];
await Promise.all(
  Array.from({ length: n }, (_, i) => {
    const w = new Worker(script, { name: `bare-${i}`, env: loaded ? CHIP_ENV : undefined });
    workers.push(w);
    if (loaded) w.postMessage({ type: 'readback' });
    return new Promise<void>((resolve, reject) => {
      w.once('message', () => resolve());
      w.once('error', reject);
    });
  }),
);
const seconds = (performance.now() - t0) / 1000;
const peakRssMb = process.resourceUsage().maxRSS / 1024;
const rssAllUpMb = process.memoryUsage().rss / 2 ** 20;
await Promise.all(workers.map((w) => w.terminate()));
console.log(
  JSON.stringify({
    workers: n,
    loaded,
    seconds,
    rss_before_mb: rssBeforeMb,
    rss_all_up_mb: rssAllUpMb,
    peak_rss_mb: peakRssMb,
  }),
);
