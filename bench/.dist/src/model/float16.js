/**
 * Bit-exact conversions between float32 and the two 16-bit float formats weights are stored in.
 *
 * Widening (bf16/f16 -> f32) is exact for every bit pattern, NaN payloads included, because it is
 * done on bit patterns (Uint32Array views) rather than through JS numbers, which may canonicalise NaNs.
 * Narrowing (f32 -> bf16/f16) rounds to nearest, ties to even, as hardware and PyTorch do, so a
 * value rounded here equals what `tensor.to(torch.bfloat16)` / `.to(torch.float16)` produce.
 */
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);
/** Bit pattern of a number rounded to float32. */
export function f32Bits(v) {
    scratchF32[0] = v;
    return scratchU32[0];
}
/** The float32 value of a 32-bit pattern. */
export function f32FromBits(bits) {
    scratchU32[0] = bits >>> 0;
    return scratchF32[0];
}
/** bf16 is the top half of a float32, so widening is a 16-bit shift. */
export function bf16BitsToF32Bits(h) {
    return ((h & 0xffff) << 16) >>> 0;
}
export function bf16BitsToF32(h) {
    return f32FromBits(bf16BitsToF32Bits(h));
}
/** float32 bits -> bf16 bits, round to nearest even; NaN stays NaN (quiet bit forced so it cannot become Inf). */
export function f32BitsToBf16Bits(x) {
    x = x >>> 0;
    if ((x & 0x7fffffff) > 0x7f800000)
        return ((x >>> 16) | 0x0040) & 0xffff;
    // Adding 0x7fff plus the lowest kept bit rounds half-to-even; a carry out of the mantissa correctly
    // bumps the exponent (and the largest finite values round to Inf, as RNE requires).
    return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}
export function f32ToBf16Bits(v) {
    return f32BitsToBf16Bits(f32Bits(v));
}
/** IEEE binary16 bits -> float32 bits, exact (subnormals, +-0, Inf, NaN payloads). */
export function f16BitsToF32Bits(h) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f)
        return (sign | 0x7f800000 | (mant << 13)) >>> 0;
    if (exp !== 0)
        return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
    if (mant === 0)
        return sign >>> 0;
    // Subnormal half: normalise the mantissa; every f16 subnormal is a normal f32.
    let e = -14;
    let m = mant;
    while ((m & 0x400) === 0) {
        m <<= 1;
        e -= 1;
    }
    return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}
export function f16BitsToF32(h) {
    return f32FromBits(f16BitsToF32Bits(h));
}
/** float32 bits -> IEEE binary16 bits, round to nearest even, overflow to Inf, gradual underflow. */
export function f32BitsToF16Bits(x) {
    x = x >>> 0;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    if (exp === 0xff)
        return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
    const e = exp - 127;
    if (e > 15)
        return sign | 0x7c00;
    if (e >= -14) {
        // Normal half. A rounding carry out of the mantissa moves into the exponent, up to Inf at 65520.
        let h = ((e + 15) << 10) | (mant >>> 13);
        const rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1))
            h += 1;
        return sign | h;
    }
    // Below 2^-25 everything rounds to zero (2^-25 itself is a tie and goes to the even 0).
    if (e < -25)
        return sign;
    // Subnormal half: the value in units of 2^-24 is full * 2^(e+1).
    const full = mant | 0x800000;
    const shift = -e - 1; // 14..24
    let h = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1))
        h += 1;
    return sign | h;
}
export function f32ToF16Bits(v) {
    return f32BitsToF16Bits(f32Bits(v));
}
let f16Table = null;
/** All 65536 widened patterns (256 KiB), built once: decoding big f16 tensors becomes one lookup per element. */
function f16ToF32Table() {
    if (f16Table === null) {
        f16Table = new Uint32Array(65536);
        for (let h = 0; h < 65536; h++)
            f16Table[h] = f16BitsToF32Bits(h);
    }
    return f16Table;
}
function bitsView(a) {
    return new Uint32Array(a.buffer, a.byteOffset, a.length);
}
/** Widen bf16 patterns into a new float32 array. */
export function decodeBf16(src) {
    const out = new Float32Array(src.length);
    const o = bitsView(out);
    for (let i = 0; i < src.length; i++)
        o[i] = src[i] << 16;
    return out;
}
/** Widen f16 patterns into a new float32 array. */
export function decodeF16(src) {
    const table = f16ToF32Table();
    const out = new Float32Array(src.length);
    const o = bitsView(out);
    for (let i = 0; i < src.length; i++)
        o[i] = table[src[i]];
    return out;
}
export function encodeBf16(src) {
    const s = bitsView(src);
    const out = new Uint16Array(src.length);
    for (let i = 0; i < s.length; i++)
        out[i] = f32BitsToBf16Bits(s[i]);
    return out;
}
export function encodeF16(src) {
    const s = bitsView(src);
    const out = new Uint16Array(src.length);
    for (let i = 0; i < s.length; i++)
        out[i] = f32BitsToF16Bits(s[i]);
    return out;
}
//# sourceMappingURL=float16.js.map