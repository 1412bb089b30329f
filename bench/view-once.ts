/**
 * The rack view case of `npm run bench`: `rackemu serve` of mixtral-8x7b (timing fidelity) on groq-576
 * as its own process, and the page at / in Debian's chromium (headless, playwright-core). Measures the
 * page's own counters (window.rackView: main-thread ms per update, parse included), the frame rate
 * (requestAnimationFrame callbacks) and long tasks while the load generator keeps the deployment busy,
 * against the same browser's frame rate on a blank page measured just before. Prints one JSON line.
 *
 * Then a chip is killed through the fault API (POST /admin/faults) under load, and the page is
 * watched until it shows the fault detected and recovered. With a directory, screenshots of the page
 * under load, while the spare node loads, and after the recovery are written there (the README's).
 *
 * Usage: node view-once.js <topology.yaml> <seconds of load> [screenshot dir]
 */
import { chromium, type Page } from 'playwright-core';
import { percentiles, runLoad, type LoadReport, type Percentiles } from './load.js';
import { startServe } from './serve-process.js';

export interface ViewResult {
  readonly cells: number;
  readonly chips: number;
  readonly layout_ms: number;
  readonly layout_bytes: number;
  readonly update_bytes: number;
  readonly updates: number;
  readonly apply_ms: Percentiles & { readonly max: number };
  readonly fps: number;
  readonly blank_fps: number;
  readonly long_tasks: number;
  /** Seconds of main-thread tasks chromium counted for the page over the loaded phase (frame counter included). */
  readonly main_thread_s: number;
  readonly seconds: number;
  readonly load: LoadReport;
  /** The same load before the page was opened, and after it was closed. */
  readonly load_without_view: LoadReport;
  readonly load_without_view_after: LoadReport;
  readonly startup_s: number;
  /** The killed chip: wall seconds from the fault request until the page showed it failed, and recovered. */
  /**
   * The killed chip: wall seconds from the fault request until the page showed it failed (detected),
   * the spare node recovering (the re-planned Plan loading), and the recovery done.
   */
  readonly fault: {
    readonly chip: string;
    readonly failed_s: number;
    readonly recovering_s: number;
    readonly recovered_s: number;
    /** The campaign's own record (GET /admin/faults): injection to detection, and the recovery, wall s. */
    readonly campaign: { readonly detect_s: number; readonly recover_s: number };
  };
}

const ADMIN = 'bench-view';
const KILLED = 'r0.n1.c2';

/** The page's globals this script reads (the bench compiles without the DOM library). */
interface PageWindow {
  requestAnimationFrame(f: (now: number) => void): number;
  rackView: {
    cells: number;
    updates: number;
    applyMs: number[];
    lastUpdateBytes: number;
    layoutMs: number;
  };
  longTasks: number;
  PerformanceObserver: new (f: (list: { getEntries(): unknown[] }) => void) => { observe(o: { type: string }): void };
}

const [topology, secondsArg, shots] = process.argv.slice(2);
const seconds = Number(secondsArg);
const args = ['--topology', topology, '--model', 'mixtral-8x7b', '--fidelity', 'timing', '--port', '0'];
args.push('--context', '4096', '--max-waiting', '1000', '--watchdog-ms', '4000');
const { url, child, exited, startupS: startup } = await startServe(args, { RACKEMU_ADMIN_TOKEN: ADMIN });

/** Closed-loop load for `seconds`: 4 clients, prompts of 32-128 tokens, 64-256 tokens out. */
function loadSpec(seed: number): Parameters<typeof runLoad>[0] {
  return {
    url,
    model: 'mixtral-8x7b',
    vocab: 32000,
    requests: 100000,
    seed,
    mode: { kind: 'closed', concurrency: 4 },
    promptTokens: { min: 32, max: 128 },
    outputTokens: { min: 64, max: 256 },
    deadlineMs: seconds * 1000,
  };
}

/** requestAnimationFrame callbacks per second over `ms`, counted in the page. */
function frameRate(page: Page, ms: number): Promise<number> {
  return page.evaluate(
    (span) =>
      new Promise<number>((resolve) => {
        const w = globalThis as unknown as PageWindow;
        let frames = 0;
        const start = performance.now();
        const tick = (now: number) => {
          frames++;
          if (now - start < span) w.requestAnimationFrame(tick);
          else resolve((frames * 1000) / (now - start));
        };
        w.requestAnimationFrame(tick);
      }),
    ms,
  );
}

/** Kills KILLED through the fault API under load; wall seconds until the page shows it failed, then recovered. */
async function killChip(page: Page): Promise<ViewResult['fault']> {
  const t = performance.now();
  const r = await fetch(`${url}/admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ kind: 'chip-crash', target: KILLED }),
  });
  if (r.status !== 202) throw new Error(`POST /admin/faults: ${r.status} ${await r.text()}`);
  const load = runLoad({
    url,
    model: 'mixtral-8x7b',
    vocab: 32000,
    requests: 100000,
    seed: 2,
    mode: { kind: 'closed', concurrency: 2 },
    promptTokens: { min: 32, max: 64 },
    outputTokens: { min: 32, max: 64 },
    deadlineMs: 90_000,
  });
  const since = () => (performance.now() - t) / 1000;
  const opts = { timeout: 120_000, polling: 50 };
  await page.waitForFunction(`document.querySelector('[data-chip="${KILLED}"]').classList.contains('f')`, null, opts);
  const failedS = since();
  await page.waitForFunction(`document.querySelector('#racks .chip.r') !== null`, null, opts);
  const recoveringS = since();
  if (shots) await page.screenshot({ path: `${shots}/rack-view-recovering.png` });
  const recovered = `document.querySelector('[data-faults]')?.textContent === '1 / 1 / 1'`;
  await page.waitForFunction(`${recovered} && document.querySelector('#racks .chip.c') !== null`, null, opts);
  const recoveredS = since();
  if (shots) {
    await page.hover(`[data-chip="${KILLED}"]`);
    await page.screenshot({ path: `${shots}/rack-view-recovered.png` });
  }
  await load;
  const list = (await (
    await fetch(`${url}/admin/faults`, { headers: { authorization: `Bearer ${ADMIN}` } })
  ).json()) as {
    faults: { injected: { wallMs: number }; detected: { wallMs: number }; recovered: { wallMs: number } }[];
  };
  const [f] = list.faults;
  const campaign = { detect_s: (f.detected.wallMs - f.injected.wallMs) / 1000, recover_s: f.recovered.wallMs / 1000 };
  return { chip: KILLED, failed_s: failedS, recovering_s: recoveringS, recovered_s: recoveredS, campaign };
}

const browser = await chromium.launch({ executablePath: process.env.RACKEMU_CHROMIUM ?? '/usr/bin/chromium' });
let result: ViewResult;
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await page.goto('about:blank');
  const blankFps = await frameRate(page, 5000);
  // warm the serving path (the first requests after start-up are slower), then the same load with no view
  // open and with it: what the page costs the emulator
  await runLoad({ ...loadSpec(0), deadlineMs: 10_000 });
  const withoutView = await runLoad(loadSpec(1));
  await page.goto(`${url}/`);
  await page.waitForFunction(() => (globalThis as unknown as PageWindow).rackView?.updates > 0);
  const cells = await page.locator('[data-chip]').count();
  const layoutBytes = (await (await fetch(`${url}/view/layout`)).text()).length;
  await page.evaluate(() => {
    const w = globalThis as unknown as PageWindow;
    w.longTasks = 0;
    new w.PerformanceObserver((l) => (w.longTasks += l.getEntries().length)).observe({ type: 'longtask' });
    w.rackView.applyMs = [];
  });
  const updates0 = await page.evaluate(() => (globalThis as unknown as PageWindow).rackView.updates);
  // chromium's own count of the page's main-thread task time (Chrome DevTools Protocol)
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const taskSeconds = async () =>
    (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration')?.value ?? NaN;
  const task0 = await taskSeconds();
  const loadDone = runLoad(loadSpec(1));
  const fps = await frameRate(page, seconds * 1000);
  if (shots) {
    await page.hover(`[data-chip="r0.n0.c3"]`);
    await page.screenshot({ path: `${shots}/rack-view-groq-576.png` });
    await page.mouse.move(0, 0);
  }
  const load = await loadDone;
  const mainThreadS = (await taskSeconds()) - task0;
  const s = await page.evaluate(() => {
    const w = globalThis as unknown as PageWindow;
    return { ...w.rackView, longTasks: w.longTasks };
  });
  const applied = percentiles(s.applyMs);
  // and once more without it, after: the order of the loads shows in their spread
  await page.goto('about:blank');
  const withoutViewAfter = await runLoad(loadSpec(1));
  await page.goto(`${url}/`);
  await page.waitForFunction(() => (globalThis as unknown as PageWindow).rackView?.updates > 0);
  const fault = await killChip(page);
  result = {
    cells,
    chips: s.cells,
    layout_ms: s.layoutMs,
    layout_bytes: layoutBytes,
    update_bytes: s.lastUpdateBytes,
    updates: s.updates - updates0,
    apply_ms: { ...applied, max: Math.max(...s.applyMs) },
    fps,
    blank_fps: blankFps,
    long_tasks: s.longTasks,
    main_thread_s: mainThreadS,
    seconds,
    load,
    load_without_view: withoutView,
    load_without_view_after: withoutViewAfter,
    startup_s: startup,
    fault,
  };
} finally {
  await browser.close();
  child.kill('SIGTERM');
}
await exited;
console.log(JSON.stringify(result));
