import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { calibrateWeightLoad } from '../src/compiler/calibrate.js';
import { fidelityRows, fidelityTable } from '../src/compiler/fidelity.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { loadTopology } from '../src/topology/load.js';
import { ROOT, topo } from './helpers/cli.js';

describe('fidelity', () => {
  it('fidelity - the calibrated value in the topology files is what the documented procedure gives', () => {
    const t = loadTopology(topo('groq-576'));
    const fit = calibrateWeightLoad(t, BUILTIN_MODELS['mixtral-8x7b'], 480);
    expect(Math.abs(fit.value - t.chip.weight_load_bytes_per_tick) / fit.value).toBeLessThan(2e-3);
    for (const name of ['groq-72', 'groq-10440', 'mini-2rack', 'mini-node']) {
      expect(loadTopology(topo(name)).chip.weight_load_bytes_per_tick).toBe(t.chip.weight_load_bytes_per_tick);
    }
    expect(t.calibrated?.[0].key).toBe('chip.weight_load_bytes_per_tick');
    expect(readFileSync(`${ROOT}docs/fidelity.md`, 'utf8')).toContain(`${t.chip.weight_load_bytes_per_tick} B/tick`);
  });

  it('fidelity - docs/fidelity.md shows the current predictions beside the published figures', () => {
    const table = fidelityTable(
      fidelityRows(
        (n) => loadTopology(topo(n)),
        (m) => BUILTIN_MODELS[m],
      ),
    );
    const doc = readFileSync(`${ROOT}docs/fidelity.md`, 'utf8');
    const inDoc = doc.split('<!-- fidelity-table:start -->\n')[1].split('\n<!-- fidelity-table:end -->')[0];
    expect(inDoc).toBe(table);
  });
});
