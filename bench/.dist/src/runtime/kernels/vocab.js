/**
 * Vocabulary-sliced kernels: embedding lookup for a row range of the table, lm_head logits for a
 * vocab slice, and greedy argmax whose per-slice partials combine deterministically.
 */
import { matmulXWt } from './linalg.js';
/**
 * Embedding rows for `ids` from the table slice holding vocab rows [v0, v1) ([v1-v0, hidden]).
 * Ids outside [v0, v1) give zero rows, so summing the outputs of chips that partition the vocab
 * gives exactly the embedding (each element comes from one chip, the others add 0).
 */
export function embedLookup(ids, tableSlice, v0, v1, hidden, out) {
    const rows = ids.length;
    if (tableSlice.length < (v1 - v0) * hidden)
        throw new RangeError('embedLookup: table slice too short');
    const y = out ?? new Float32Array(rows * hidden);
    for (let r = 0; r < rows; r++) {
        const id = ids[r];
        if (id >= v0 && id < v1)
            y.set(tableSlice.subarray((id - v0) * hidden, (id - v0 + 1) * hidden), r * hidden);
        else
            y.fill(0, r * hidden, (r + 1) * hidden);
    }
    return y;
}
/**
 * Logits for vocab rows [v0, v1) from x [rows, hidden] and the lm_head (or tied embedding) rows
 * [v0, v1) as [v1-v0, hidden]: [rows, v1-v0], bit-identical to the same columns of the full lm_head.
 */
export function lmHeadSlice(x, rows, hidden, wSlice, v0, v1, out) {
    return matmulXWt(x, rows, hidden, wSlice, v1 - v0, out);
}
/** True if (v, i) beats (bv, bi): torch.argmax order: NaN is the maximum, then larger value, then lower index. */
export function argmaxBetter(v, i, bv, bi) {
    if (bi < 0)
        return true;
    const vn = v !== v;
    const bn = bv !== bv;
    if (vn || bn)
        return vn && (!bn || i < bi);
    return v > bv || (v === bv && i < bi);
}
/**
 * Row-wise argmax of logits [rows, n] whose column c is global index indexOffset + c.
 */
export function argmaxRows(logits, rows, n, indexOffset = 0) {
    if (logits.length < rows * n)
        throw new RangeError('argmaxRows: logits too short');
    const values = new Float32Array(rows);
    const indices = new Int32Array(rows).fill(-1);
    for (let r = 0; r < rows; r++) {
        let bv = NaN;
        let bi = -1;
        for (let c = 0; c < n; c++) {
            const v = logits[r * n + c];
            if (argmaxBetter(v, indexOffset + c, bv, bi)) {
                bv = v;
                bi = indexOffset + c;
            }
        }
        values[r] = bv;
        indices[r] = bi;
    }
    return { values, indices };
}
/**
 * Combine argmax partials from several vocab slices (any order, any grouping: the result is the
 * same, ties to the lowest global index). Rows with index -1 (an empty slice) never win.
 */
export function combineArgmax(...parts) {
    if (parts.length === 0)
        throw new RangeError('combineArgmax: no partials');
    const rows = parts[0].values.length;
    const values = new Float32Array(rows);
    const indices = new Int32Array(rows).fill(-1);
    for (const p of parts) {
        if (p.values.length !== rows || p.indices.length !== rows)
            throw new RangeError('combineArgmax: row counts differ');
        for (let r = 0; r < rows; r++) {
            if (p.indices[r] >= 0 && argmaxBetter(p.values[r], p.indices[r], values[r], indices[r])) {
                values[r] = p.values[r];
                indices[r] = p.indices[r];
            }
        }
    }
    return { values, indices };
}
//# sourceMappingURL=vocab.js.map