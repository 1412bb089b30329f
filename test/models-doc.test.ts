import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../src/compiler/compile.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { MODELS_TABLE_CONTEXT, modelsTableMarkdown, modelsTableRows, type ModelsTableRow } from '../src/sweep/index.js';
import { loadTopology } from '../src/topology/load.js';
import { topo } from './helpers/cli.js';

const ROOT = new URL('../', import.meta.url).pathname;

describe('models doc', () => {
  const base = loadTopology(topo('groq-10440'));
  let rows: ModelsTableRow[];
  beforeAll(() => {
    rows = modelsTableRows(base);
  });

  it('models doc - docs/models.md is what the compiler gives for every full-size built-in today', () => {
    expect(readFileSync(`${ROOT}docs/models.md`, 'utf8')).toBe(modelsTableMarkdown(base, rows));
  });

  it('models doc - llama-3.1-405b fits at fp8 on fewer racks than at bf16, and on one rack fewer it does not', () => {
    const row = (d: string) => rows.find((r) => r.model === 'llama-3.1-405b' && r.dtype === d)!;
    expect(row('fp8').racks).toBeLessThan(row('bf16').racks);
    const fewer = { ...base, racks: row('fp8').racks - 1 };
    expect(() =>
      compile(fewer, BUILTIN_MODELS['llama-3.1-405b'], { dtype: 'fp8', context: MODELS_TABLE_CONTEXT }),
    ).toThrow(/RACKEMU_ERR_DOES_NOT_FIT|does not fit/);
    expect(rows.every((r) => r.chipsUsed <= r.racks * 64 && r.tokensPerSPerUser > 0)).toBe(true);
  });
});
