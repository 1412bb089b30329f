/**
 * The slicing and storage-rounding half of a WeightStore, shared by every weight source so that
 * `rows`, `cols` and `full` agree by construction: a source only has to produce contiguous element
 * ranges of its tensors (widened to float32), and this class applies storeAs with the tensor's row
 * length. Per-row dtypes (int8, fp8) need whole rows for their scale, so slices of those read whole
 * rows and cut afterwards; elementwise dtypes (bf16, fp16) read just the requested elements.
 */

import type { WeightDtype } from './config.js';
import { isElementwise, storeAs } from './quantize.js';
import type { WeightStore } from './weights.js';
import { ModelError } from '../util/errors.js';

export interface RawTensorSource {
  /** Shape of a tensor of this source, undefined if the source has no such tensor. */
  shape(name: string): readonly number[] | undefined;
  /** Elements [start, start+count) of the row-major tensor as float32 source values (before storage rounding). */
  read(name: string, start: number, count: number): Float32Array;
  /**
   * Optional fast path: columns [c0, c1) of rows [r0, r1) of the tensor viewed as [rows, rowLength].
   * Without it, cols() reads each row's segment with read().
   */
  readColumns?(name: string, rowLength: number, r0: number, r1: number, c0: number, c1: number): Float32Array;
  /** For error messages: what was searched (e.g. the file list). */
  describe(): string;
}

/** Element budget of one chunk when cols() walks a tensor, so column slices of big tensors stay bounded in memory. */
const CHUNK_ELEMENTS = 1 << 20;

export class StoredWeights implements WeightStore {
  constructor(
    private readonly source: RawTensorSource,
    readonly dtype: WeightDtype,
  ) {}

  shape(name: string): readonly number[] {
    const s = this.source.shape(name);
    if (s === undefined) {
      throw new ModelError('RACKEMU_ERR_SAFETENSORS_MISSING', `tensor ${name} is not in ${this.source.describe()}`, {
        details: { path: name, file: this.source.describe() },
      });
    }
    return s;
  }

  has(name: string): boolean {
    return this.source.shape(name) !== undefined;
  }

  rows(name: string, r0: number, r1: number): Float32Array {
    const g = this.geometry(name);
    checkRange(name, 'rows', r0, r1, g.rows);
    // A 1-D tensor is a single storage row: under int8/fp8 its scale depends on every element.
    if (g.oneD && !isElementwise(this.dtype)) return this.full(name).slice(r0, r1);
    if (r1 === r0 || g.rowLength === 0) return new Float32Array(0);
    const raw = this.source.read(name, r0 * g.rowLength, (r1 - r0) * g.rowLength);
    return storeAs(raw, this.dtype, g.rowLength);
  }

  cols(name: string, c0: number, c1: number): Float32Array {
    const s = this.shape(name);
    if (s.length !== 2) throw new RangeError(`cols(${name}): tensor is ${s.length}-D, cols needs a 2-D tensor`);
    const [rows, cols] = s;
    checkRange(name, 'cols', c0, c1, cols);
    const width = c1 - c0;
    const out = new Float32Array(rows * width);
    if (width === 0) return out;
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
      for (let i = 0; i < n; i++) out.set(stored.subarray(i * cols + c0, i * cols + c1), (r + i) * width);
    }
    return out;
  }

  full(name: string): Float32Array {
    const g = this.geometry(name);
    const total = g.rows * g.rowLength;
    if (total === 0) return new Float32Array(0);
    return storeAs(this.source.read(name, 0, total), this.dtype, g.oneD ? total : g.rowLength);
  }

  /**
   * Rows are the first dimension and a row is the product of the others; for a 1-D tensor the
   * "rows" of the WeightStore contract are its elements (rowLength 1).
   */
  private geometry(name: string): { rows: number; rowLength: number; oneD: boolean } {
    const s = this.shape(name);
    if (s.length <= 1) return { rows: s.length === 0 ? 1 : s[0], rowLength: 1, oneD: true };
    let rowLength = 1;
    for (let i = 1; i < s.length; i++) rowLength *= s[i];
    return { rows: s[0], rowLength, oneD: false };
  }
}

function checkRange(name: string, what: string, a: number, b: number, n: number): void {
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < 0 || b < a || b > n) {
    throw new RangeError(`${what}(${name}, ${a}, ${b}): range must satisfy 0 <= ${a} <= ${b} <= ${n}`);
  }
}
