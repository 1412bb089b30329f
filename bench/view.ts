/**
 * The rack view section of `npm run bench` (view-once.ts): the page of a 576-chip `rackemu serve` in
 * headless chromium under load: cells shown, main-thread cost per update, frame rate against a blank
 * page, what the open page costs the emulator, and a chip killed and recovered as the page shows it.
 * Also refreshes the README's screenshots (docs/img/rack-view-*.png).
 */
import { existsSync } from 'node:fs';
import type { ViewResult } from './view-once.js';

type Child = <T>(label: string, script: string, args: string[], timeoutS: number) => T | { error: string };

/** Seconds of load in each measured phase. */
const LOAD_SECONDS = 20;

export type ViewRun = ViewResult | { error: string };

export function runView(child: Child, topo: (name: string) => string, screenshots: string): ViewRun {
  const chromium = process.env.RACKEMU_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) return { error: `no chromium at ${chromium} (scripts/ensure-deps.sh installs it)` };
  return child<ViewResult>(
    'view: the rack view of mixtral-8x7b on groq-576 in chromium',
    'view-once.js',
    [topo('groq-576'), String(LOAD_SECONDS), screenshots],
    600,
  );
}

const f = (v: number | undefined, d = 1): string => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(d));

export function viewSection(r: ViewRun): string[] {
  const lines = ['', '### Rack view: the page at `/` of a 576-chip `rackemu serve`', ''];
  if ('error' in r) return [...lines, `Failed: ${r.error.replace(/\|/g, '/')}`];
  const a = r.apply_ms;
  const l = r.load;
  const w = r.load_without_view;
  const w2 = r.load_without_view_after;
  lines.push(
    `\`rackemu serve\` of mixtral-8x7b (timing fidelity, context 4096, batch 1) on groq-576, and its page at \`/\` in Debian's chromium (headless, 1600x1000, playwright-core), while a closed loop of 4 clients keeps the deployment busy for ${r.seconds} s. The page's figures are its own (\`window.rackView\`: main-thread ms from an update's arrival to the grid, summary and timeline drawn, JSON parse included); the frame rate counts \`requestAnimationFrame\` callbacks over the loaded ${r.seconds} s, against the same browser on a blank page just before. Wall ms here are this machine's, with 576 chip threads and the browser sharing 2 cores: a main thread descheduled mid-update counts.`,
    '',
    '| figure | value | baseline | ratio |',
    '|---|---|---|---|',
    `| chip cells on the page | ${r.cells} | chips in the layout: ${r.chips} | ${r.cells === r.chips ? 'all' : 'MISSING CELLS'} |`,
    `| main-thread ms per update: p50 / p90 / p99 / max (${r.updates} updates) | ${f(a.p50, 2)} / ${f(a.p90, 2)} / ${f(a.p99, 2)} / ${f(a.max, 2)} | one frame at the blank page's rate: ${f(1000 / r.blank_fps, 2)} ms | p99 ${f(a.p99 / (1000 / r.blank_fps), 2)}x of a frame |`,
    `| mean main-thread ms per update | ${f(a.mean, 2)} | the update interval: 250 ms | ${f((100 * a.mean) / 250, 2)}% of the main thread |`,
    `| frames per second while updating under load | ${f(r.fps, 1)} | blank page: ${f(r.blank_fps, 1)} | ${f(r.fps / r.blank_fps, 2)}x |`,
    `| long tasks (over 50 ms) on the page under load | ${r.long_tasks} | | |`,
    `| the page's main-thread task time under load (chromium's TaskDuration, the frame counter included) | ${f(r.main_thread_s, 2)} s | the loaded ${r.seconds} s | ${f((100 * r.main_thread_s) / r.seconds, 1)}% of one core |`,
    `| building the grid from a layout (parse included) | ${f(r.layout_ms, 1)} ms | | |`,
    `| bytes: layout (once per Plan) / one update | ${r.layout_bytes} / ${r.update_bytes} | | |`,
    `| emulator tokens/s wall with the page open | ${f(l.tokens_per_s_wall, 1)} (${l.generated_tokens} tokens) | the same load, page not open, before / after: ${f(w.tokens_per_s_wall, 1)} / ${f(w2.tokens_per_s_wall, 1)} | ${f(l.tokens_per_s_wall / w.tokens_per_s_wall, 2)}x / ${f(l.tokens_per_s_wall / w2.tokens_per_s_wall, 2)}x |`,
    `| a chip killed through POST /admin/faults (${r.fault.chip}) under load: wall s from the request until the page shows it failed / the spare node recovering / the recovery done | ${f(r.fault.failed_s, 1)} / ${f(r.fault.recovering_s, 1)} / ${f(r.fault.recovered_s, 1)} s | the campaign's own record: injection to detection ${f(r.fault.campaign.detect_s, 1)} s, recovery ${f(r.fault.campaign.recover_s, 1)} s | |`,
    '',
    `With the page open the emulator shares the 2 cores with chromium (its renderer and software compositor run at the display rate while the frame counter asks for every frame); the tokens/s ratios would be what that costs the emulator, but the emulator's own rate still climbs from one 20 s load to the next (all three follow a 10 s warm-up and send the same seeded requests), and that drift is larger than the page's cost: the page's share of the machine is its main-thread task time above. The fault's times are the deployment's: detection waits for the chips stalled behind the dead one to give up (\`--watchdog-ms 4000\`), and recovery re-plans and restarts the 576 chips (docs/faults.md). The screenshots in the README come from this run.`,
  );
  return lines;
}
