import { CHIP_STATE_CODES, type ViewLayout, type ViewUpdate } from '../protocol.js';
import { Grid } from './grid.js';
import { Summary } from './summary.js';
import { Timeline } from './timeline.js';
import { attachTooltip } from './tooltip.js';

/**
 * The rack view's page: a grid of chips, a summary panel and a timeline strip, kept current by the
 * server-sent events of /view/events (a `layout` when the Plan changes, an `update` 4 times a second).
 * What each update cost on the main thread is kept in `window.rackView` (the benchmark reads it).
 */

interface ViewStats {
  cells: number;
  layouts: number;
  updates: number;
  /** Main-thread ms of each of the last APPLY_SAMPLES updates (parse and apply). */
  applyMs: number[];
  /** Bytes of the last update's JSON, and ms spent building the grid for the last layout. */
  lastUpdateBytes: number;
  layoutMs: number;
  /** Cells whose class or busy level the last update changed. */
  lastChanged: number;
  planId: number;
}

const APPLY_SAMPLES = 512;

declare global {
  interface Window {
    rackView: ViewStats;
  }
}

const stats: ViewStats = {
  cells: 0,
  layouts: 0,
  updates: 0,
  applyMs: [],
  lastUpdateBytes: 0,
  layoutMs: 0,
  lastChanged: 0,
  planId: -1,
};
window.rackView = stats;

const el = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const racks = el<HTMLDivElement>('racks');
const status = el<HTMLSpanElement>('status');
const summary = new Summary(el('summary'));
const timeline = new Timeline(el<HTMLCanvasElement>('timeline'), el('timeline-axis'));
let grid: Grid | null = null;
let layout: ViewLayout | null = null;

attachTooltip(racks, el('tooltip'), () => grid);

const legend = el<HTMLUListElement>('legend');
for (const [code, name] of Object.entries(CHIP_STATE_CODES)) {
  const li = document.createElement('li');
  const swatch = document.createElement('i');
  swatch.className = `chip ${code}`;
  li.append(swatch, name);
  legend.append(li);
}
legend.classList.add('racks', 'by-state');

el<HTMLSelectElement>('colour-mode').addEventListener('change', (e) => {
  const mode = (e.target as HTMLSelectElement).value;
  racks.classList.toggle('by-sram', mode === 'sram');
  racks.classList.toggle('by-state', mode !== 'sram');
});

function onLayout(text: string): void {
  const t0 = performance.now();
  const l = JSON.parse(text) as ViewLayout;
  layout = l;
  grid = new Grid(racks, l);
  stats.cells = grid.cells.length;
  stats.layouts++;
  stats.planId = l.planId;
  el('title').textContent = `· ${l.model} on ${l.topology} (${l.fidelity} fidelity, ${l.chips.length} chips)`;
  document.title = `rackemu · ${l.model} on ${l.topology}`;
  stats.layoutMs = performance.now() - t0;
}

/** One update, from its JSON text: parse and apply, timed together. */
function onUpdate(text: string): void {
  const t0 = performance.now();
  const u = JSON.parse(text) as ViewUpdate;
  if (grid === null || layout === null || u.planId !== layout.planId) return;
  stats.lastChanged = grid.apply(u.states, u.busy);
  summary.render(layout, u);
  if (timeline.add(u.steps, u.faults)) timeline.draw(layout);
  racks.dispatchEvent(new Event('rackview:update'));
  const ms = performance.now() - t0;
  stats.updates++;
  stats.lastUpdateBytes = text.length;
  stats.applyMs.push(ms);
  if (stats.applyMs.length > APPLY_SAMPLES) stats.applyMs.shift();
}

const events = new EventSource('/view/events');
events.addEventListener('open', () => {
  status.textContent = 'live';
  status.classList.add('live');
});
events.addEventListener('error', () => {
  status.textContent = 'reconnecting';
  status.classList.remove('live');
});
events.addEventListener('end', () => {
  // the server closed (a drain, the end of an experiment): the page keeps what it last showed
  events.close();
  status.textContent = 'ended';
  status.classList.remove('live');
});
events.addEventListener('layout', (e) => onLayout((e as MessageEvent<string>).data));
events.addEventListener('update', (e) => onUpdate((e as MessageEvent<string>).data));
window.addEventListener('resize', () => layout !== null && timeline.draw(layout));
