/**
 * Prints the predicted-vs-published table of docs/fidelity.md from the current code and topologies.
 * Run: npm run build && node dist/bench/fidelity.js
 */
import { fidelityRows, fidelityTable } from '../src/compiler/fidelity.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { loadTopology } from '../src/topology/load.js';

const root = new URL('../../', import.meta.url).pathname;
console.log(
  fidelityTable(
    fidelityRows(
      (t) => loadTopology(`${root}topologies/${t}.yaml`),
      (m) => BUILTIN_MODELS[m],
    ),
  ),
);
