import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { describe, expect, it } from 'vitest';
import type { SweepResult } from '../src/sweep/index.js';
import { run, topo } from './helpers/cli.js';

const json = async (...argv: string[]) => {
  const r = await run('sweep', ...argv, '--json');
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as SweepResult;
};

describe('sweep', () => {
  it("sweep - the seed's comparison: groq-576 and h100-8x on mixtral-8x7b, one point per setting that fits", async () => {
    const r = await json('--topology', topo('groq-576'), '--topology', topo('h100-8x'), '--model', 'mixtral-8x7b');
    const systems = new Set(r.points.map((p) => p.topology));
    expect(systems).toEqual(new Set(['groq-576', 'h100-8x']));
    for (const p of r.points) {
      expect(Object.keys(p)).toEqual(
        expect.arrayContaining([
          'topology',
          'batch',
          'micro_batches',
          'dtype',
          'tokens_per_s_per_user',
          'tokens_per_s_total',
          'ttft_ms',
          'power_w',
          'cost_per_million_tokens_usd',
        ]),
      );
      // one micro-batch per step: the total is batch x per user
      expect(p.tokens_per_s_total).toBeCloseTo(p.batch * p.tokens_per_s_per_user, 6);
    }
    // every setting is either a point or skipped with the compiler's reason
    expect(r.points.length + r.skipped.length).toBe(2 * 7);
    for (const s of r.skipped) expect(s.code).toBe('RACKEMU_ERR_DOES_NOT_FIT');
    // a point is what compile predicts for the same setting
    const h100b8 = r.points.find((p) => p.topology === 'h100-8x' && p.batch === 8)!;
    const c = await run(
      'compile',
      '--topology',
      topo('h100-8x'),
      '--model',
      'mixtral-8x7b',
      '--batch',
      '8',
      '--context',
      '4096',
      '--json',
    );
    const compiled = JSON.parse(c.out) as {
      predicted: { tokens_per_s_per_user: number };
      cost_per_million_tokens_usd: number;
      power_w: number;
    };
    expect(h100b8.tokens_per_s_per_user).toBe(compiled.predicted.tokens_per_s_per_user);
    expect(h100b8.cost_per_million_tokens_usd).toBe(compiled.cost_per_million_tokens_usd);
    expect(h100b8.power_w).toBe(compiled.power_w);
  });

  it('sweep - cost per token divides by the utilisation a topology states', async () => {
    const args = ['--topology', topo('h100-8x'), '--model', 'mixtral-8x7b', '--batch', '1,4'];
    const full = await json(...args);
    const half = await json(...args, '--set', 'prices.utilisation=0.5');
    for (const [i, p] of half.points.entries()) {
      expect(p.cost_per_million_tokens_usd).toBeCloseTo(2 * full.points[i].cost_per_million_tokens_usd, 9);
      expect(p.tokens_per_s_per_user).toBe(full.points[i].tokens_per_s_per_user);
    }
  });

  it('sweep - the chart renders: resvg draws the SVG, not blank, one colour per system', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rackemu-sweep-'));
    const svgFile = join(dir, 'frontier.svg');
    const pngFile = join(dir, 'frontier.png');
    const r = await run(
      'sweep',
      '--topology',
      topo('groq-576'),
      '--topology',
      topo('h100-8x'),
      '--topology',
      topo('a100-8x'),
      '--model',
      'mixtral-8x7b',
      '--batch',
      '1,2,8',
      '--svg',
      svgFile,
      '--png',
      pngFile,
    );
    expect(r.code, r.err).toBe(0);
    const img = new Resvg(readFileSync(svgFile, 'utf8')).render();
    expect([img.width, img.height]).toEqual([900, 560]);
    const px = img.pixels;
    let inked = 0;
    // the first three series colours of chart.ts: groq-576, h100-8x, a100-8x
    const series = [
      [0x1f, 0x77, 0xb4],
      [0xd6, 0x27, 0x28],
      [0x2c, 0xa0, 0x2c],
    ];
    const seen = series.map(() => 0);
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] < 200 || px[i + 1] < 200 || px[i + 2] < 200) inked++;
      series.forEach(([r8, g8, b8], s) => {
        if (Math.abs(px[i] - r8) + Math.abs(px[i + 1] - g8) + Math.abs(px[i + 2] - b8) < 30) seen[s]++;
      });
    }
    expect(inked / (px.length / 4)).toBeGreaterThan(0.01);
    // each system's line and points are drawn
    for (const n of seen) expect(n).toBeGreaterThan(100);
    // the PNG is a PNG
    expect(readFileSync(pngFile).subarray(1, 4).toString()).toBe('PNG');
  });

  it('sweep - bad lists are named: an unknown dtype, an empty batch item', async () => {
    const base = ['sweep', '--topology', topo('h100-8x'), '--model', 'mixtral-8x7b'];
    const d = await run(...base, '--dtype', 'bf16,int3');
    expect(d.code).not.toBe(0);
    expect(d.err).toMatch(/--dtype: expected one of .*got "int3"/);
    const b = await run(...base, '--batch', '1,,4');
    expect(b.code).not.toBe(0);
    expect(b.err).toMatch(/--batch: expected a comma-separated list/);
    const t = await run(...base, '--set', 'chip.memory_efficiency=1.5');
    expect(t.code).not.toBe(0);
    expect(t.err).toMatch(/chip\.memory_efficiency/);
  });
});
