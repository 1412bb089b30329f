import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { launchChromium } from './helpers/browser.js';
import { topo } from './helpers/cli.js';
import { post, startServe, waitReady, type ServeProcess } from './serve-fixtures.js';

// The check: `/` of a `serve` of mixtral-8x7b (timing fidelity) on groq-576 shows 576 cells,
// and they come alive while a request runs. (Its update cost and frame rate are measured by the bench.)
let server: ServeProcess | undefined;
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  const r = await server?.stop();
  expect(r?.code).toBe(0);
});

describe('view', () => {
  it('view - mixtral-8x7b on groq-576: the page shows 576 cells, 64 of them spare, and chips computing while a request runs', async () => {
    server = await startServe(
      ['--topology', topo('groq-576'), '--model', 'mixtral-8x7b', '--fidelity', 'timing', '--context', '4096'],
      {},
    );
    await waitReady(server.url);
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.goto(`${server.url}/`);
    await page.waitForFunction('window.rackView?.updates > 0');
    expect(await page.locator('[data-chip]').count()).toBe(576);
    expect(await page.locator('[data-chip="r7.n8.c7"]').getAttribute('class')).toBe('chip p');
    expect(await page.locator('#racks .chip.p').count()).toBe(64);
    const r = post(`${server.url}/v1/completions`, { model: 'mixtral-8x7b', prompt: [1, 2, 3, 4], max_tokens: 512 });
    await page.waitForFunction(`document.querySelectorAll('#racks .chip.c').length > 400`);
    expect((await r).status).toBe(200);
  }, 180_000);
});
