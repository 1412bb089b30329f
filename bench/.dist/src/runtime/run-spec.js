/**
 * What one run asks of the chips, and the sequence of schedule steps it expands to. Every chip
 * derives the same step list from the same RunSpec, so no per-step coordination is needed.
 */
/**
 * ceil(prompt / chunk) prefill steps (the last one yields the first new token), then one decode step
 * per further token, back to back on the global tick timeline.
 */
export function runSteps(spec, prefillChunk, lengths) {
    const P = spec.promptIds.length;
    const first = spec.stepOffset ?? 0;
    const steps = [];
    let base = 0;
    for (let start = 0; start < P; start += prefillChunk) {
        const valid = Math.min(prefillChunk, P - start);
        const positions = new Int32Array(prefillChunk);
        const inputIds = new Int32Array(prefillChunk);
        for (let r = 0; r < prefillChunk; r++) {
            positions[r] = start + Math.min(r, valid - 1);
            inputIds[r] = r < valid ? spec.promptIds[start + r] : 0;
        }
        steps.push({ index: first + steps.length, kind: 'prefill', base, positions, valid, inputIds });
        base += lengths.prefill;
    }
    for (let i = 1; i < spec.maxNewTokens; i++) {
        steps.push({ index: first + steps.length, kind: 'decode', base, positions: Int32Array.of(P + i - 1), valid: 1, inputIds: null });
        base += lengths.decode;
    }
    return steps;
}
//# sourceMappingURL=run-spec.js.map