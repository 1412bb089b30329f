import type { SweepPoint } from './sweep.js';

/**
 * The throughput-latency frontier as an SVG: tokens/s per user (up) against tokens/s of the whole
 * system (right), log scales. Every setting is a point; one line per system and dtype joins its
 * frontier (the settings no other beats on both axes), each labelled with its batch, micro-batches and
 * cost per million tokens. Plain SVG 1.1 (no scripts, no external fonts or
 * styles) so any renderer shows it.
 */

const W = 900;
const H = 560;
const M = { left: 80, right: 220, top: 50, bottom: 60 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** Powers of ten times 1, 2 and 5 within [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out;
}

/** A log-scale axis over the values, padded to whole 1-2-5 steps. */
function axis(values: readonly number[], from: number, to: number) {
  const lo = Math.min(...values) / 1.3;
  const hi = Math.max(...values) * 1.3;
  const span = Math.log10(hi) - Math.log10(lo);
  return { at: (v: number) => from + ((Math.log10(v) - Math.log10(lo)) / span) * (to - from), ticks: ticks(lo, hi) };
}

/** The settings no other beats on both axes, by rising total rate: the system's throughput-latency frontier. */
function frontier(list: readonly SweepPoint[]): SweepPoint[] {
  const sorted = [...list].sort((a, b) => b.tokens_per_s_total - a.tokens_per_s_total);
  const out: SweepPoint[] = [];
  let bestUser = 0;
  for (const p of sorted) {
    if (p.tokens_per_s_per_user <= bestUser) continue;
    bestUser = p.tokens_per_s_per_user;
    out.push(p);
  }
  return out.reverse();
}

export function frontierSvg(points: readonly SweepPoint[], title: string): string {
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${M.left}" y="28" font-size="16" font-weight="bold">${esc(title)}</text>`,
  ];
  if (points.length === 0) {
    out.push(`<text x="${M.left}" y="${H / 2}">no setting compiled</text>`, '</svg>');
    return out.join('\n');
  }
  const x = axis(
    points.map((p) => p.tokens_per_s_total),
    M.left,
    W - M.right,
  );
  const y = axis(
    points.map((p) => p.tokens_per_s_per_user),
    H - M.bottom,
    M.top,
  );
  for (const v of x.ticks) {
    const px = x.at(v).toFixed(1);
    out.push(`<line x1="${px}" y1="${M.top}" x2="${px}" y2="${H - M.bottom}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${px}" y="${H - M.bottom + 16}" text-anchor="middle">${num(v)}</text>`);
  }
  for (const v of y.ticks) {
    const py = y.at(v).toFixed(1);
    out.push(`<line x1="${M.left}" y1="${py}" x2="${W - M.right}" y2="${py}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${M.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${num(v)}</text>`);
  }
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#444"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 18}" text-anchor="middle">tokens/s, whole system (log)</text>`,
    `<text transform="translate(20 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">tokens/s per user (log)</text>`,
  );
  const series = new Map<string, SweepPoint[]>();
  for (const p of points) {
    const key = `${p.topology} ${p.dtype}`;
    series.set(key, [...(series.get(key) ?? []), p]);
  }
  [...series].forEach(([name, list], i) => {
    const colour = COLOURS[i % COLOURS.length];
    const front = frontier(list);
    const path = front.map(
      (p) => `${x.at(p.tokens_per_s_total).toFixed(1)},${y.at(p.tokens_per_s_per_user).toFixed(1)}`,
    );
    out.push(`<polyline points="${path.join(' ')}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    for (const p of list) {
      const px = x.at(p.tokens_per_s_total);
      const py = y.at(p.tokens_per_s_per_user);
      const best = front.includes(p);
      // settings off the frontier (another is faster per user at a higher total) are hollow and unlabelled
      out.push(
        best
          ? `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="4" fill="${colour}"/>`
          : `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3" fill="none" stroke="${colour}"/>`,
      );
      if (!best) continue;
      const setting = p.micro_batches > 1 ? `b${p.batch}x${p.micro_batches}` : `b${p.batch}`;
      out.push(
        `<text x="${(px + 6).toFixed(1)}" y="${(py - 6).toFixed(1)}" font-size="10" fill="${colour}">${setting} $${num(p.cost_per_million_tokens_usd)}/M</text>`,
      );
    }
    const ly = M.top + 10 + i * 20;
    out.push(`<rect x="${W - M.right + 16}" y="${ly - 8}" width="14" height="4" fill="${colour}"/>`);
    out.push(`<text x="${W - M.right + 36}" y="${ly}" dominant-baseline="middle">${esc(name)}</text>`);
  });
  out.push(
    `<text x="${W - M.right + 16}" y="${M.top + 20 + series.size * 20}" font-size="10" fill="#555">line: each system's frontier</text>`,
    `<text x="${W - M.right + 16}" y="${M.top + 34 + series.size * 20}" font-size="10" fill="#555">b&lt;batch&gt;x&lt;micro&gt;: $ per M tokens</text>`,
    '</svg>',
  );
  return out.join('\n');
}
