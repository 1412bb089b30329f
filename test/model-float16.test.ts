import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16BitsToF32,
  f32Bits,
  f32FromBits,
  f32ToBf16Bits,
  f32ToF16Bits,
} from '../src/model/float16.js';

describe('float16 - bf16 conversions', () => {
  it('bf16 widening is a 16-bit shift', () => {
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc000)).toBe(-2);
    expect(bf16BitsToF32(0x4049)).toBe(3.140625);
    expect(bf16BitsToF32(0x7f80)).toBe(Infinity);
    expect(bf16BitsToF32(0xff80)).toBe(-Infinity);
    expect(Object.is(bf16BitsToF32(0x8000), -0)).toBe(true);
    expect(bf16BitsToF32(0x0001)).toBe(f32FromBits(0x00010000)); // smallest bf16 subnormal
    expect(Number.isNaN(bf16BitsToF32(0x7fc0))).toBe(true);
  });

  it('f32 -> bf16 rounds to nearest, ties to even', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(Math.PI)).toBe(0x4049);
    expect(f32ToBf16Bits(f32FromBits(0x3f808000))).toBe(0x3f80); // tie, keep even
    expect(f32ToBf16Bits(f32FromBits(0x3f818000))).toBe(0x3f82); // tie, round up to even
    expect(f32ToBf16Bits(f32FromBits(0x3f808001))).toBe(0x3f81); // above the tie
    expect(f32ToBf16Bits(f32FromBits(0x3f807fff))).toBe(0x3f80); // below the tie
    expect(f32ToBf16Bits(f32FromBits(0x7f7fffff))).toBe(0x7f80); // max f32 rounds to Inf
    expect(f32ToBf16Bits(f32FromBits(0xbf818000))).toBe(0xbf82);
    expect(f32ToBf16Bits(NaN) & 0x7f80).toBe(0x7f80);
    expect(f32ToBf16Bits(NaN) & 0x7f).not.toBe(0);
    expect(f32ToBf16Bits(f32FromBits(0x7f800001))).toBe(0x7fc0); // signalling NaN stays NaN, not Inf
  });

  it('bf16 array round trip is exact for bf16 values and preserves NaN bits', () => {
    const patterns = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) patterns[i] = i;
    const wide = decodeBf16(patterns);
    const back = encodeBf16(wide);
    const bad: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const isNan = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      if (isNan ? (back[i] | 0x40) !== (i | 0x40) : back[i] !== i) bad.push(i);
    }
    expect(bad).toEqual([]);
  });
});

describe('float16 - f16 conversions', () => {
  it('f16 widening matches known bit patterns', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0x3555)).toBe(0.333251953125);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(Number.isNaN(f16BitsToF32(0x7e00))).toBe(true);
    expect(f16BitsToF32(0x8001)).toBe(-(2 ** -24));
  });

  it('f32 -> f16 rounds correctly in normal, subnormal and overflow ranges', () => {
    expect(f32ToF16Bits(1 / 3)).toBe(0x3555);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // tie at the top rounds to Inf
    expect(f32ToF16Bits(1e10)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e10)).toBe(0xfc00);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, keep even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, round to even
    expect(f32ToF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal
    expect(f32ToF16Bits(Math.fround(2 ** -25 * (1 + 2 ** -20)))).toBe(0x0001);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(0x0002); // tie 1.5 -> 2
    expect(f32ToF16Bits(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up into the smallest normal
    expect(f32ToF16Bits(2 ** -30)).toBe(0);
    expect(f32ToF16Bits(-(2 ** -30))).toBe(0x8000);
    expect(f32ToF16Bits(f32FromBits(0x00000001))).toBe(0); // f32 subnormal
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    const nan = f32ToF16Bits(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('every f16 pattern survives f16 -> f32 -> f16', () => {
    const patterns = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) patterns[i] = i;
    const back = encodeF16(decodeF16(patterns));
    const bad: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const isNan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (isNan ? (back[i] | 0x200) !== (i | 0x200) : back[i] !== i) bad.push(i);
    }
    expect(bad).toEqual([]);
  });

  it('f32 -> f16 agrees with exact nearest-even rounding on random values', () => {
    let s = 12345;
    const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let k = 0; k < 20000; k++) {
      const v = Math.fround((next() - 0.5) * 2 ** (next() * 50 - 30));
      const h = f32ToF16Bits(v);
      const got = f16BitsToF32(h);
      if (!Number.isFinite(got)) {
        expect(Math.abs(v)).toBeGreaterThanOrEqual(65520);
        continue;
      }
      // The neighbours of h must not be closer to v (exact in float64).
      for (const n of [h - 1, h + 1]) {
        if ((n & 0x7fff) >= 0x7c00 || n < 0 || (n & 0xffff) !== n || ((n ^ h) & 0x8000) !== 0) continue;
        const other = f16BitsToF32(n);
        expect(Math.abs(other - v)).toBeGreaterThanOrEqual(Math.abs(got - v));
        if (Math.abs(other - v) === Math.abs(got - v)) expect(h & 1).toBe(0);
      }
    }
    expect(f32Bits(1)).toBe(0x3f800000);
  });
});
