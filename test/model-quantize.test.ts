import { describe, expect, it } from 'vitest';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from '../src/model/float16.js';
import { FP8_E4M3_MAX, roundHalfEven, roundToE4M3, storeAs } from '../src/model/quantize.js';

function noisy(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 2 ** 32 - 0.5;
    a[i] = u * scale * (1 + (i % 7)); // rows get different ranges
  }
  return a;
}

describe('quantize - rounding helpers', () => {
  it('roundHalfEven rounds ties to even, both signs', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, -2, -2, 2, 3, -3,
    ]);
  });

  it('roundToE4M3 matches the E4M3FN grid (subnormals, ties, saturation)', () => {
    expect(roundToE4M3(1)).toBe(1);
    expect(roundToE4M3(1.0625)).toBe(1); // tie between 1 and 1.125 -> even mantissa
    expect(roundToE4M3(1.1875)).toBe(1.25); // tie between 1.125 and 1.25 -> even
    expect(roundToE4M3(17)).toBe(16);
    expect(roundToE4M3(19)).toBe(20);
    expect(roundToE4M3(448)).toBe(448);
    expect(roundToE4M3(460)).toBe(448);
    expect(roundToE4M3(1e6)).toBe(448);
    expect(roundToE4M3(-1e6)).toBe(-448);
    expect(roundToE4M3(2 ** -9)).toBe(2 ** -9); // smallest subnormal
    expect(roundToE4M3(2 ** -10)).toBe(0); // tie with 0 -> 0
    expect(roundToE4M3(3 * 2 ** -10)).toBe(2 ** -8); // 1.5 quanta -> 2
    expect(roundToE4M3(0.0146)).toBe(7 * 2 ** -9); // largest subnormal region
    expect(roundToE4M3(-0.3)).toBe(-0.3125);
  });
});

describe('quantize - storeAs', () => {
  it('bf16 and fp16 equal elementwise rounding and ignore row boundaries', () => {
    const x = noisy(64, 1, 3);
    expect(storeAs(x, 'bf16', 16)).toEqual(decodeBf16(encodeBf16(x)));
    expect(storeAs(x, 'fp16', 8)).toEqual(decodeF16(encodeF16(x)));
    expect(storeAs(x, 'bf16', 64)).toEqual(storeAs(x, 'bf16', 1));
    expect(storeAs(Float32Array.of(70000), 'fp16', 1)[0]).toBe(Infinity);
  });

  it('int8 error is at most half a step of the row scale and rows are independent', () => {
    const rowLength = 32;
    const x = noisy(rowLength * 7, 2, 0.2);
    const y = storeAs(x, 'int8', rowLength);
    for (let r = 0; r < 7; r++) {
      const row = x.subarray(r * rowLength, (r + 1) * rowLength);
      const absmax = Math.max(...Array.from(row, Math.abs));
      const scale = Math.fround(absmax / 127);
      const levels = new Set<number>();
      for (let i = 0; i < rowLength; i++) {
        const v = y[r * rowLength + i];
        expect(Math.abs(v - row[i])).toBeLessThanOrEqual(scale / 2 + 1e-7 * absmax);
        const q = v / scale;
        expect(Math.abs(q - Math.round(q))).toBeLessThan(1e-4); // on the int8 grid
        expect(Math.abs(Math.round(q))).toBeLessThanOrEqual(127);
        levels.add(Math.round(q));
      }
      expect(levels.has(127) || levels.has(-127)).toBe(true); // absmax maps to the end of the grid
      expect(storeAs(row.slice(), 'int8', rowLength)).toEqual(y.subarray(r * rowLength, (r + 1) * rowLength));
    }
  });

  it('fp8 relative error is at most 2^-4 in the normal range and values stay on the scaled E4M3 grid', () => {
    const rowLength = 64;
    const x = noisy(rowLength * 5, 3, 0.05);
    const y = storeAs(x, 'fp8', rowLength);
    for (let r = 0; r < 5; r++) {
      const row = x.subarray(r * rowLength, (r + 1) * rowLength);
      const absmax = Math.max(...Array.from(row, Math.abs));
      const scale = Math.fround(absmax / FP8_E4M3_MAX);
      for (let i = 0; i < rowLength; i++) {
        const v = y[r * rowLength + i];
        const bound = Math.max(Math.abs(row[i]) / 16, scale * 2 ** -10);
        expect(Math.abs(v - row[i])).toBeLessThanOrEqual(bound * (1 + 1e-6));
        expect(roundToE4M3(v / scale)).toBeCloseTo(v / scale, 4);
      }
      expect(Math.max(...Array.from(y.subarray(r * rowLength, (r + 1) * rowLength), Math.abs))).toBeCloseTo(absmax, 6);
    }
  });

  it('is pure and deterministic, keeps zero rows zero and rejects a bad row length', () => {
    const x = noisy(40, 4, 1);
    const copy = x.slice();
    for (const d of ['bf16', 'fp16', 'int8', 'fp8'] as const) {
      expect(storeAs(x, d, 8)).toEqual(storeAs(x, d, 8));
      expect(x).toEqual(copy);
      expect(storeAs(new Float32Array(8), d, 4)).toEqual(new Float32Array(8));
    }
    expect(() => storeAs(x, 'int8', 7)).toThrow(RangeError);
    expect(() => storeAs(x, 'int8', 0)).toThrow(RangeError);
  });
});
