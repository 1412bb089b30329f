import { CHIP_STATE_CODES, type ChipStateCode } from '../protocol.js';
import type { Grid } from './grid.js';

const SPARK = '▁▂▃▄▅▆▇█';
const MIB = 1024 * 1024;

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function pct(x: number): string {
  return `${(100 * x).toFixed(0)}%`;
}

/** What a chip's tooltip says: id, state, what it holds, SRAM use, its share of a step, recent activity. */
export function chipTooltip(grid: Grid, i: number): string {
  const chip = grid.layout.chips[i];
  const state = CHIP_STATE_CODES[grid.stateOf(i) as ChipStateCode] ?? 'idle';
  const cap = grid.layout.sramCapacityBytes;
  const mem = grid.layout.memoryKind === 'sram' ? 'SRAM' : 'HBM';
  const holds =
    chip.holds.length === 0 ? '<i>nothing</i>' : `<ul>${chip.holds.map((h) => `<li>${esc(h)}</li>`).join('')}</ul>`;
  const spark = grid
    .historyOf(i)
    .map((b) => SPARK[Math.min(SPARK.length - 1, Math.round((b / 9) * (SPARK.length - 1)))])
    .join('');
  const work = chip.role !== 'idle' && chip.role !== 'spare';
  return [
    `<b>${esc(chip.id)}</b> · ${state} · ${chip.role}${chip.retired ? ' · retired with its node' : ''}`,
    `<div>holds: ${holds}</div>`,
    `<div>${mem}: ${(chip.sramUsedBytes / MIB).toFixed(1)} of ${(cap / MIB).toFixed(1)} MiB (${pct(chip.sramUsedBytes / cap)})</div>`,
    work
      ? `<div>per decode step: computes ${pct(chip.decode.compute)}, sends ${pct(chip.decode.send)}` +
        ` · per prefill step: ${pct(chip.prefill.compute)}, ${pct(chip.prefill.send)}</div>`
      : '',
    `<div>recent activity (busy share, last ${grid.historyOf(i).length} updates): <span class="spark">${spark}</span></div>`,
  ].join('');
}

/** Shows the tooltip of the chip under the pointer (one listener for every cell). */
export function attachTooltip(root: HTMLElement, tip: HTMLElement, grid: () => Grid | null): void {
  let shown = -1;
  const place = (e: MouseEvent) => {
    const x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y =
      e.clientY + 14 + tip.offsetHeight > window.innerHeight ? e.clientY - tip.offsetHeight - 8 : e.clientY + 14;
    tip.style.left = `${Math.max(0, x)}px`;
    tip.style.top = `${Math.max(0, y)}px`;
  };
  root.addEventListener('mouseover', (e) => {
    const g = grid();
    const cell = (e.target as HTMLElement).closest<HTMLElement>('[data-i]');
    if (g === null || cell === null) return;
    shown = Number(cell.dataset.i);
    tip.innerHTML = chipTooltip(g, shown);
    tip.hidden = false;
    place(e);
  });
  root.addEventListener('mousemove', (e) => {
    if (!tip.hidden) place(e);
  });
  root.addEventListener('mouseleave', () => {
    tip.hidden = true;
    shown = -1;
  });
  /** Keeps an open tooltip current as updates arrive. */
  root.addEventListener('rackview:update', () => {
    const g = grid();
    if (g !== null && shown >= 0 && !tip.hidden) tip.innerHTML = chipTooltip(g, shown);
  });
}
