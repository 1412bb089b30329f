/**
 * Builds the rack view's page (src/view/page/) into dist/view/: app.js (the page's TypeScript bundled
 * for the browser, no imports left), index.html and app.css as they are. The server reads them from
 * there (src/view/routes.ts); nothing is fetched from a CDN. Run by `npm run build` after tsc.
 */
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { build } from 'rolldown';

const root = new URL('../', import.meta.url);
const page = new URL('src/view/page/', root);
const outDir = new URL('dist/view/', root).pathname.replace(/\/$/, '');
// built aside and swapped in, so that a server starting while a build runs never finds the files missing
const fresh = `${outDir}.new-${process.pid}`;
const stale = `${outDir}.old-${process.pid}`;
await rm(fresh, { recursive: true, force: true });
await build({
  input: new URL('main.ts', page).pathname,
  platform: 'browser',
  logLevel: 'warn',
  output: { file: `${fresh}/app.js`, format: 'esm', sourcemap: false, minify: true },
});
await mkdir(fresh, { recursive: true });
for (const f of ['index.html', 'app.css']) await copyFile(new URL(f, page), `${fresh}/${f}`);
await rename(outDir, stale).catch(() => undefined);
await rename(fresh, outDir);
await rm(stale, { recursive: true, force: true });
