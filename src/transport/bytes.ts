/**
 * Little-endian integers and 8-byte alignment, as the transport's wire formats use them (frame.ts,
 * bundle.ts, chunk.ts, the embedded rings, NATS credit grants). Plain index reads and writes: cheaper
 * than DataView or Buffer's checked methods in a chip's rarely optimised code.
 */

/** n rounded up to a multiple of 8. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** The unsigned 32-bit integer at b[at..at+4). */
export function u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** Write n (taken modulo 2^32) at b[at..at+4). */
export function putU32(b: Uint8Array, at: number, n: number): void {
  b[at] = n & 0xff;
  b[at + 1] = (n >>> 8) & 0xff;
  b[at + 2] = (n >>> 16) & 0xff;
  b[at + 3] = n >>> 24;
}
