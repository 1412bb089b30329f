import { compile } from './compile.js';
import { predict } from './report.js';
export function calibrateWeightLoad(topology, model, targetTokensPerSPerUser, options = {}, relTolerance = 1e-4) {
    const hz = topology.chip.clock_mhz * 1e6;
    const memoryBw = topology.chip.hbm_gib > 0 ? topology.chip.hbm_bandwidth_tbps : topology.chip.sram_bandwidth_tbps;
    const rateAt = (v) => predict(compile({ ...topology, chip: { ...topology.chip, weight_load_bytes_per_tick: v } }, model, options)).tokens_per_s_per_user;
    let lo = 1;
    let hi = (memoryBw * 1e12) / hz;
    let iterations = 0;
    while ((hi - lo) / hi > relTolerance && iterations < 60) {
        const mid = (lo + hi) / 2;
        if (rateAt(mid) < targetTokensPerSPerUser)
            lo = mid;
        else
            hi = mid;
        iterations++;
    }
    const value = Math.round(hi * 100) / 100;
    return { value, predictedTokensPerS: rateAt(value), iterations };
}
//# sourceMappingURL=calibrate.js.map