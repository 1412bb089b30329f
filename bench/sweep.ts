/**
 * Time of the seed's tokenomics comparison (docs/tokenomics.md): `rackemu sweep` of mixtral-8x7b over
 * groq-576, h100-8x and a100-8x at the default batches, against one compile of groq-576 measured in
 * the same run. Run: npm run build && node dist/bench/sweep.js
 */
import { compile } from '../src/compiler/compile.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { DEFAULT_SWEEP_BATCHES, DEFAULT_SWEEP_CONTEXT } from '../src/cli/sweep.js';
import { sweep } from '../src/sweep/index.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology } from '../src/topology/load.js';

const root = new URL('../../', import.meta.url).pathname;
const model = BUILTIN_MODELS['mixtral-8x7b'];
const topologies = ['groq-576', 'h100-8x', 'a100-8x'].map((t) => loadTopology(`${root}topologies/${t}.yaml`));
// warm the compiler once, then the baseline: one groq-576 compile at batch 1
compile(topologies[0], model, { batch: 1, context: DEFAULT_SWEEP_CONTEXT });
const t0 = performance.now();
compile(topologies[0], model, { batch: 1, context: DEFAULT_SWEEP_CONTEXT }, new Fabric(topologies[0]));
const one = (performance.now() - t0) / 1000;
const r = sweep(topologies, model, {
  batches: DEFAULT_SWEEP_BATCHES,
  microBatches: [1],
  dtypes: ['bf16'],
  context: DEFAULT_SWEEP_CONTEXT,
});
const settings = r.points.length + r.skipped.length;
console.log(
  `sweep of ${settings} settings (${r.points.length} compiled, ${r.skipped.length} do not fit) on 3 topologies: ` +
    `${r.wall_s.toFixed(2)} s = ${(r.wall_s / one).toFixed(1)}x one groq-576 compile (${(one * 1000).toFixed(0)} ms)`,
);
