/**
 * The slicing and storage-rounding half of a WeightStore, shared by every weight source so that
 * `rows`, `cols` and `full` agree by construction: a source only has to produce contiguous element
 * ranges of its tensors (widened to float32), and this class applies storeAs with the tensor's row
 * length. Per-row dtypes (int8, fp8) need whole rows for their scale, so slices of those read whole
 * rows and cut afterwards; elementwise dtypes (bf16, fp16) read just the requested elements.
 */
import { isElementwise, storeAs } from './quantize.js';
import { ModelError } from '../util/errors.js';
/** Element budget of one chunk when cols() walks a tensor, so column slices of big tensors stay bounded in memory. */
const CHUNK_ELEMENTS = 1 << 20;
export class StoredWeights {
    source;
    dtype;
    constructor(source, dtype) {
        this.source = source;
        this.dtype = dtype;
    }
    shape(name) {
        const s = this.source.shape(name);
        if (s === undefined) {
            throw new ModelError('RACKEMU_ERR_SAFETENSORS_MISSING', `tensor ${name} is not in ${this.source.describe()}`, {
                details: { path: name, file: this.source.describe() },
            });
        }
        return s;
    }
    has(name) {
        return this.source.shape(name) !== undefined;
    }
    rows(name, r0, r1) {
        const g = this.geometry(name);
        checkRange(name, 'rows', r0, r1, g.rows);
        // A 1-D tensor is a single storage row: under int8/fp8 its scale depends on every element.
        if (g.oneD && !isElementwise(this.dtype))
            return this.full(name).slice(r0, r1);
        if (r1 === r0 || g.rowLength === 0)
            return new Float32Array(0);
        const raw = this.source.read(name, r0 * g.rowLength, (r1 - r0) * g.rowLength);
        return storeAs(raw, this.dtype, g.rowLength);
    }
    cols(name, c0, c1) {
        const s = this.shape(name);
        if (s.length !== 2)
            throw new RangeError(`cols(${name}): tensor is ${s.length}-D, cols needs a 2-D tensor`);
        const [rows, cols] = s;
        checkRange(name, 'cols', c0, c1, cols);
        const width = c1 - c0;
        const out = new Float32Array(rows * width);
        if (width === 0)
            return out;
        if (isElementwise(this.dtype)) {
            if (this.source.readColumns !== undefined) {
                return storeAs(this.source.readColumns(name, cols, 0, rows, c0, c1), this.dtype, width);
            }
            for (let r = 0; r < rows; r++) {
                out.set(storeAs(this.source.read(name, r * cols + c0, width), this.dtype, width), r * width);
            }
            return out;
        }
        const chunkRows = Math.max(1, Math.floor(CHUNK_ELEMENTS / cols));
        for (let r = 0; r < rows; r += chunkRows) {
            const n = Math.min(chunkRows, rows - r);
            const stored = storeAs(this.source.read(name, r * cols, n * cols), this.dtype, cols);
            for (let i = 0; i < n; i++)
                out.set(stored.subarray(i * cols + c0, i * cols + c1), (r + i) * width);
        }
        return out;
    }
    full(name) {
        const g = this.geometry(name);
        const total = g.rows * g.rowLength;
        if (total === 0)
            return new Float32Array(0);
        return storeAs(this.source.read(name, 0, total), this.dtype, g.oneD ? total : g.rowLength);
    }
    /**
     * Rows are the first dimension and a row is the product of the others; for a 1-D tensor the
     * "rows" of the WeightStore contract are its elements (rowLength 1).
     */
    geometry(name) {
        const s = this.shape(name);
        if (s.length <= 1)
            return { rows: s.length === 0 ? 1 : s[0], rowLength: 1, oneD: true };
        let rowLength = 1;
        for (let i = 1; i < s.length; i++)
            rowLength *= s[i];
        return { rows: s[0], rowLength, oneD: false };
    }
}
function checkRange(name, what, a, b, n) {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < 0 || b < a || b > n) {
        throw new RangeError(`${what}(${name}, ${a}, ${b}): range must satisfy 0 <= ${a} <= ${b} <= ${n}`);
    }
}
//# sourceMappingURL=stored-weights.js.map