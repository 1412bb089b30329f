import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ViewLayout } from '../src/view/index.js';
import { launchChromium } from './helpers/browser.js';
import { post, startServe, tinyArgs, waitReady, type ServeProcess } from './serve-fixtures.js';

// The rack view in a real browser (Debian's chromium, headless) against a real `rackemu serve`:
// mixtral-tiny in timing fidelity on mini-2rack (2 racks x 3 nodes x 4 chips; n2 of each rack spare).
const ADMIN = 'view-admin-token';
let server: ServeProcess;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  server = await startServe([...tinyArgs(4), '--fidelity', 'timing', '--watchdog-ms', '4000'], {
    RACKEMU_ADMIN_TOKEN: ADMIN,
  });
  await waitReady(server.url);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.url}/`);
  await page.waitForFunction('window.rackView?.updates > 0');
  expect(errors).toEqual([]);
  // every class each cell takes from now on, in order (the page changes a cell's class only when its state does)
  // (page code as strings: the tests compile without the DOM library)
  await page.evaluate(`
    window.seen = {};
    new MutationObserver((changes) => {
      for (const m of changes) (window.seen[m.target.dataset.chip] ??= []).push(m.target.className);
    }).observe(document.getElementById('racks'), { subtree: true, attributes: true, attributeFilter: ['class'] });
  `);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  const r = await server?.stop();
  expect(r?.code).toBe(0);
});

const seen = (chip: string) => page.evaluate(`window.seen[${JSON.stringify(chip)}] ?? []`) as Promise<string[]>;
const cellClass = (chip: string) => page.locator(`[data-chip="${chip}"]`).getAttribute('class');

/** Requests (40 tokens each, 4 at a time) until `done` holds, or 60 s. */
async function serveWhile(done: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 60_000;
  while (!(await done())) {
    if (Date.now() > end) throw new Error('the page did not show it within 60 s');
    const batch = Array.from({ length: 4 }, () =>
      post(`${server.url}/v1/completions`, { model: 'mixtral-tiny', prompt: [1, 2, 3], max_tokens: 40 }),
    );
    for (const r of await Promise.all(batch)) expect(r.status).toBe(200);
  }
}

describe('view', () => {
  it('view - GET / needs no token and shows one cell per chip of the topology, each with its chip id; spares marked', async () => {
    const ids: string[] = [];
    for (const r of [0, 1]) for (const n of [0, 1, 2]) for (const c of [0, 1, 2, 3]) ids.push(`r${r}.n${n}.c${c}`);
    const cells = page.locator('[data-chip]');
    expect(await cells.count()).toBe(24);
    expect(await page.evaluate(`[...document.querySelectorAll('[data-chip]')].map((e) => e.dataset.chip)`)).toEqual(
      ids,
    );
    for (const spare of ids.filter((id) => id.includes('.n2.'))) expect(await cellClass(spare)).toBe('chip p');
    await expect(page.locator('#title').textContent()).resolves.toMatch(
      /mixtral-tiny on mini-2rack \(timing fidelity, 24 chips\)/,
    );
  });

  it('view - cells turn computing while requests run, the summary counts them, and a chip tooltip says what it holds', async () => {
    const steps0 = Number(await page.locator('[data-steps]').textContent());
    await serveWhile(async () => (await seen('r0.n0.c0')).includes('chip c'));
    await page.waitForFunction(`Number(document.querySelector('[data-requests="finished"]')?.textContent) >= 4`);
    expect(Number(await page.locator('[data-steps]').textContent())).toBeGreaterThan(steps0);
    await expect(page.locator('[data-measured="ttft"]').textContent()).resolves.toMatch(/^\d+\.\d{3}$/);
    // idle again once the requests are done
    await page.waitForFunction(`document.querySelector('[data-chip="r0.n0.c0"]').className === 'chip i'`);
    const layout = (await (await fetch(`${server.url}/view/layout`)).json()) as ViewLayout;
    const chip = layout.chips.find((c) => c.id === 'r0.n0.c0')!;
    await page.hover('[data-chip="r0.n0.c0"]');
    const tip = await page.locator('#tooltip').innerText();
    expect(tip).toContain('r0.n0.c0');
    for (const h of chip.holds) expect(tip).toContain(h);
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    const share = ((100 * chip.sramUsedBytes) / layout.sramCapacityBytes).toFixed(0);
    expect(tip).toContain(`SRAM: ${mib(chip.sramUsedBytes)} of ${mib(layout.sramCapacityBytes)} MiB (${share}%)`);
    expect(tip).toMatch(/recent activity/);
  });

  it('view - a chip killed through the fault API turns failed; the spare node recovers, then computes', async () => {
    const armed = await post(
      `${server.url}/admin/faults`,
      { kind: 'chip-crash', target: 'r0.n1.c2' },
      { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
    );
    expect(armed.status).toBe(202);
    await serveWhile(async () => (await cellClass('r0.n1.c2')) === 'chip f retired');
    await page.waitForFunction(`document.querySelector('[data-faults]')?.textContent === '1 / 1 / 1'`);
    await serveWhile(async () => (await seen('r0.n2.c2')).includes('chip c'));
    const spare = await seen('r0.n2.c2');
    // spare until the re-plan, recovering while the new Plan loads, then at work
    expect(spare.indexOf('chip r')).toBeGreaterThanOrEqual(0);
    expect(spare.lastIndexOf('chip c')).toBeGreaterThan(spare.indexOf('chip r'));
    expect(await cellClass('r0.n1.c0')).toMatch(/^chip i retired$/);
    await expect(page.locator('.events').innerText()).resolves.toMatch(
      /recovered chip-crash r0\.n2 replan onto r0\.n2/,
    );
  });

  it('view - the Perfetto trace of the current Plan downloads from the page', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#trace-link')]);
    expect(download.suggestedFilename()).toBe('mini-2rack-mixtral-tiny-decode.trace.json');
    const text = await (await fetch(`${server.url}/view/trace.json`)).text();
    const trace = JSON.parse(text) as { traceEvents: { ph: string; pid: number }[] };
    expect(trace.traceEvents.filter((e) => e.ph === 'X' && e.pid === 1).length).toBeGreaterThan(0);
  });
});
