/**
 * URL of a compiled sibling module (e.g. a worker script). Worker threads can only run JavaScript, but
 * this code also runs straight from the TypeScript sources (vitest): then the sibling is taken from the
 * tsc output, dist/src/transport/.
 */
export function compiledSibling(file: string, base: string = import.meta.url): URL {
  if (base.endsWith('.ts')) return new URL(`../../dist/src/transport/${file}`, base);
  return new URL(`./${file}`, base);
}
