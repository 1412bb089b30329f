/** One compile in a fresh process, for clean time and peak-RSS figures: prints one JSON line. */
import { compile } from '../src/compiler/compile.js';
import { predict } from '../src/compiler/report.js';
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology } from '../src/topology/load.js';
const [topologyFile, model] = process.argv.slice(2);
const t0 = performance.now();
const topology = loadTopology(topologyFile);
const fabric = new Fabric(topology);
const plan = compile(topology, BUILTIN_MODELS[model], {}, fabric);
const seconds = (performance.now() - t0) / 1000;
const p = predict(plan);
console.log(JSON.stringify({
    topology: topology.name,
    model,
    seconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    chips: fabric.chipCount,
    links: fabric.links.length,
    decode_ops: plan.steps.decode.ops.length,
    decode_transfers: plan.steps.decode.transfers.length,
    tokens_per_s_per_user: p.tokens_per_s_per_user,
}));
//# sourceMappingURL=compile-once.js.map