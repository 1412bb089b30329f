/**
 * URL of a compiled module (a worker script, a child-process entry). Worker threads and child
 * processes run JavaScript only, but this code also runs straight from its TypeScript sources under
 * vitest: then the module is taken from the tsc output (dist/src/...), which `npm test` builds first.
 */
export function compiledUrl(relative: string, base: string): URL {
  const url = new URL(relative, base);
  if (!base.endsWith('.ts')) return url;
  return new URL(url.href.replace(/\/src\/(?!.*\/src\/)/, '/dist/src/'));
}
