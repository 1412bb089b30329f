/**
 * What a chip holds after a weight is stored in a given dtype, expressed back in float32.
 *
 * The compiler picks the storage dtype; the reference model and every chip read weights through
 * storeAs, so both compute with bit-identical values and quantisation error shows up identically in
 * both (it is part of the model being emulated, not a discrepancy between the two).
 *
 * Rounding, everywhere: round to nearest, ties to even (the IEEE default and what PyTorch / common
 * int8 and fp8 kernels do), so results are reproducible and unbiased on ties.
 *  - bf16 / fp16: elementwise rounding of the float32 value (fp16 overflows to +-Inf beyond 65504).
 *  - int8: symmetric per-row absmax: scale = fround(absmax / 127), q = clamp(rne(x / scale), -127, 127),
 *    value = fround(q * scale). -128 is unused so the grid is symmetric.
 *  - fp8: OCP E4M3FN per-row: scale = fround(absmax / 448), q = E4M3(|x| / scale) rounded RNE and
 *    saturating at 448 (E4M3FN has no Inf), value = fround(sign * q * scale).
 * An all-zero row has scale 0 and stays zero. Non-finite inputs propagate (a NaN or Inf weight
 * makes its row's scale non-finite), which is what a real quantiser would do with a broken checkpoint.
 */
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './float16.js';
export const INT8_QMAX = 127;
export const FP8_E4M3_MAX = 448;
const scratchF64 = new Float64Array(1);
const scratchHi = new Uint32Array(scratchF64.buffer);
/** Index of the 32-bit word holding a float64's sign and exponent. */
const HI = new Uint8Array(Float64Array.of(-0).buffer)[7] === 0x80 ? 1 : 0;
/** Round half to even (Math.round rounds halves toward +Inf). */
export function roundHalfEven(x) {
    const r = Math.round(x);
    return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
/** Spacing of E4M3 values in binade 2^e for e = -6..8 (3 mantissa bits), exact powers of two. */
const E4M3_QUANTUM = Array.from({ length: 15 }, (_, i) => 2 ** (i - 6 - 3));
/**
 * Round a value to the nearest OCP E4M3FN number (bias 7, 3 mantissa bits,
 * smallest subnormal 2^-9, largest finite 448), ties to even, saturating to +-448.
 */
export function roundToE4M3(v) {
    if (v !== v)
        return v; // NaN
    const y = v < 0 ? -v : v;
    if (y === 0)
        return v; // keeps the sign of zero
    let q;
    if (y >= FP8_E4M3_MAX) {
        q = FP8_E4M3_MAX;
    }
    else {
        // Binary exponent read from the float64 bits (exact, and much cheaper than Math.log2 per weight).
        scratchF64[0] = y;
        let e = ((scratchHi[HI] >>> 20) & 0x7ff) - 1023;
        if (e < -6)
            e = -6; // the subnormal range shares the quantum of the smallest normal binade
        const quantum = E4M3_QUANTUM[e + 6];
        q = roundHalfEven(y / quantum) * quantum;
        if (q > FP8_E4M3_MAX)
            q = FP8_E4M3_MAX;
    }
    return v < 0 ? -q : q;
}
function checkRows(data, rowLength) {
    if (!Number.isSafeInteger(rowLength) || rowLength <= 0 || data.length % rowLength !== 0) {
        // A caller bug (shapes come from validated configs), not a user input error.
        throw new RangeError(`storeAs: rowLength ${rowLength} does not divide the data length ${data.length}`);
    }
}
function quantisePerRow(data, rowLength, qmax, roundScaled) {
    const out = new Float32Array(data.length);
    for (let r0 = 0; r0 < data.length; r0 += rowLength) {
        let absmax = 0;
        for (let i = r0; i < r0 + rowLength; i++) {
            const a = Math.abs(data[i]);
            if (a > absmax || Number.isNaN(a))
                absmax = a;
        }
        const scale = Math.fround(absmax / qmax);
        if (scale === 0)
            continue; // all-zero row (or every |x| below float32's resolution of absmax/qmax)
        for (let i = r0; i < r0 + rowLength; i++)
            out[i] = Math.fround(roundScaled(data[i] / scale) * scale);
    }
    return out;
}
/**
 * The float32 values a chip holds after storing `data` (row-major, rows of `rowLength` elements;
 * for a 1-D tensor pass its length, making it one row) in `dtype`. Pure: returns a new array.
 */
export function storeAs(data, dtype, rowLength) {
    checkRows(data, rowLength);
    switch (dtype) {
        case 'bf16':
            return decodeBf16(encodeBf16(data));
        case 'fp16':
            return decodeF16(encodeF16(data));
        case 'int8':
            return quantisePerRow(data, rowLength, INT8_QMAX, (y) => Math.max(-INT8_QMAX, Math.min(INT8_QMAX, roundHalfEven(y))));
        case 'fp8':
            return quantisePerRow(data, rowLength, FP8_E4M3_MAX, roundToE4M3);
    }
}
/** True when storeAs treats each element on its own, so a slice of a row can be stored without the rest of it. */
export function isElementwise(dtype) {
    return dtype === 'bf16' || dtype === 'fp16';
}
//# sourceMappingURL=quantize.js.map