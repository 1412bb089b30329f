/**
 * Start-up and memory baseline, in a fresh process: spawn N node:worker_threads workers at once (as the
 * host agents do), wait until every one has posted 'ready', report the wall time and the peak RSS.
 * Usage: node dist/bench/bare-spawn.js N [loaded]  ->  one JSON line. With `loaded`, each worker first
 * loads the chip runtime's modules (bare-worker-loaded.ts).
 */
import { Worker } from 'node:worker_threads';

const n = Number(process.argv[2] ?? 576);
const loaded = process.argv[3] === 'loaded';
const script = new URL(loaded ? './bare-worker-loaded.js' : './bare-worker.js', import.meta.url);
const rssBeforeMb = process.memoryUsage().rss / 2 ** 20;
const t0 = performance.now();
const workers: Worker[] = [];
await Promise.all(
  Array.from({ length: n }, (_, i) => {
    const w = new Worker(script, { name: `bare-${i}` });
    workers.push(w);
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
console.log(JSON.stringify({ workers: n, loaded, seconds, rss_before_mb: rssBeforeMb, rss_all_up_mb: rssAllUpMb, peak_rss_mb: peakRssMb }));
