import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { stepTrace } from '../compiler/trace.js';
import { ApiError } from '../serve/api-error.js';
import { SseWriter } from '../serve/sse.js';
import type { RackView } from './live.js';

/** How often the pages get an update: 4 a second, each a few hundred bytes plus one byte per chip. */
export const UPDATE_MS = 250;

/** The page's files, as `npm run build` writes them (scripts/bundle-view.mjs), by URL path. */
const ASSETS = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/view/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/view/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
} as const;

/** dist/view/, from the compiled module (dist/src/view/) or from its TypeScript source under vitest. */
const ASSET_DIR = new URL(import.meta.url.endsWith('.ts') ? '../../dist/view/' : '../../view/', import.meta.url);

function loadAssets(): Map<string, { body: Buffer; type: string }> | Error {
  const out = new Map<string, { body: Buffer; type: string }>();
  try {
    for (const [path, a] of Object.entries(ASSETS))
      out.set(path, { body: readFileSync(new URL(a.file, ASSET_DIR)), type: a.type });
  } catch (e) {
    return new Error(
      `the rack view's files are missing from ${ASSET_DIR.pathname} (npm run build writes them): ${String(e)}`,
    );
  }
  return out;
}

/**
 * The rack view (read-only, no token): GET / (the page), its script and style, GET /view/layout (the
 * chips and what they hold), GET /view/events (server-sent events: `layout` on connecting and after
 * each re-plan, then `update` every UPDATE_MS, and `end` as the server closes), GET /view/trace.json
 * (the current Plan's decode step as a Chrome trace, for Perfetto). One timer serves every page, and
 * runs only while one is open.
 */
export function registerView(app: FastifyInstance, view: RackView): void {
  const assets = loadAssets();
  for (const path of Object.keys(ASSETS)) {
    app.get(path, async (_req, reply) => {
      if (assets instanceof Error) throw new ApiError(500, assets.message, 'server_error', 'view_assets_missing');
      const a = assets.get(path)!;
      return reply.header('content-type', a.type).header('cache-control', 'no-cache').send(a.body);
    });
  }
  const noPlan = () =>
    new ApiError(503, 'no Plan yet: the deployment is still compiling', 'service_unavailable_error', 'not_ready');
  app.get('/view/layout', async () => {
    if (view.layout === null) throw noPlan();
    return view.layout;
  });
  app.get('/view/trace.json', async (_req, reply) => {
    const current = view.current;
    if (current === null) throw noPlan();
    const name = `${current.plan.topology.name}-${current.plan.model.name}-decode.trace.json`;
    return reply
      .header('content-disposition', `attachment; filename="${name}"`)
      .send(stepTrace(current.plan, current.fabric));
  });
  const pages = new Set<{ sse: SseWriter; planId: number }>();
  let timer: NodeJS.Timeout | null = null;
  let layoutText = { planId: -1, text: '' };
  const layoutOf = (planId: number): string => {
    if (layoutText.planId !== planId) layoutText = { planId, text: JSON.stringify(view.layout) };
    return layoutText.text;
  };
  const tick = () => {
    const u = view.update();
    if (u === null) return;
    const text = JSON.stringify(u);
    for (const p of pages) {
      if (p.planId !== u.planId) {
        p.sse.event('layout', layoutOf(u.planId));
        p.planId = u.planId;
      }
      p.sse.event('update', text);
    }
  };
  app.get('/view/events', async (_req, reply) => {
    const page = { sse: new SseWriter(reply), planId: -1 };
    pages.add(page);
    page.sse.onClose(() => {
      pages.delete(page);
      if (pages.size === 0 && timer !== null) {
        clearInterval(timer);
        timer = null;
      }
    });
    timer ??= setInterval(tick, UPDATE_MS);
    return reply;
  });
  // the pages' streams never end by themselves: a closing server sends the last update, says so, ends them
  app.addHook('preClose', async () => {
    if (pages.size > 0) tick();
    for (const p of pages) {
      p.sse.event('end', '{}');
      p.sse.end();
    }
  });
}
