/**
 * Reproduces the one calibrated parameter: chip.weight_load_bytes_per_tick of topologies/groq-*.yaml,
 * fitted so that mixtral-8x7b on groq-576 predicts Groq's published ~480 tokens/s per user.
 * Run: npm run build && node dist/bench/calibrate.js
 */
import { BUILTIN_MODELS } from '../src/model/builtin.js';
import { calibrateWeightLoad } from '../src/compiler/calibrate.js';
import { loadTopology } from '../src/topology/load.js';
export const PUBLISHED_GROQ_MIXTRAL_TOKENS_PER_S = 480;
const topology = loadTopology(new URL('../../topologies/groq-576.yaml', import.meta.url).pathname);
const t0 = performance.now();
const c = calibrateWeightLoad(topology, BUILTIN_MODELS['mixtral-8x7b'], PUBLISHED_GROQ_MIXTRAL_TOKENS_PER_S);
const memBytesPerTick = (topology.chip.sram_bandwidth_tbps * 1e12) / (topology.chip.clock_mhz * 1e6);
console.log(JSON.stringify({
    key: 'chip.weight_load_bytes_per_tick',
    value: c.value,
    in_file: topology.chip.weight_load_bytes_per_tick,
    predicted_tokens_per_s_per_user: c.predictedTokensPerS,
    target: PUBLISHED_GROQ_MIXTRAL_TOKENS_PER_S,
    fraction_of_sram_bandwidth: c.value / memBytesPerTick,
    iterations: c.iterations,
    seconds: (performance.now() - t0) / 1000,
}));
//# sourceMappingURL=calibrate.js.map