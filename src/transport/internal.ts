/**
 * The transport's internals that code outside it needs: the frame, bundle and chunk codecs, CRC-32, ring
 * sizing and the raw-rate measurement, for tests and bench/; everything public (index.ts) is here too,
 * so one import serves a test. The chip runtime, whose senders and receivers encode and check frames
 * and bundles themselves, imports frame.ts and bundle.ts directly: a static import of this file would
 * put chunk.ts, which only the lazily loaded NATS endpoint needs, into every chip worker's bundle
 * (measured: +5 kB of the 207 kB each of hundreds of isolates loads).
 */
export * from './index.js';
export { crc32 } from './crc32.js';
export {
  decodeFrame,
  encodeFrame,
  intSize,
  tensorView,
  writeInt,
  FrameTemplate,
  FRAME_VERSION,
  type DecodedFrame,
  type Dtype,
  type FrameHeader,
  type FrameHeaderInit,
  type FrameTemplateInit,
  type Integrity,
} from './frame.js';
export {
  bundleCount,
  bundleFrameBytes,
  bundleFrames,
  bundleHeadBytes,
  bundleRecordBytes,
  encodeBundle,
  isBundle,
  splitBundle,
  writeBundleHead,
  BUNDLE_MARKER,
} from './bundle.js';
export { chunkFrame, chunkHeaderBytes, isChunk, FrameReassembler, CHUNK_MARKER } from './chunk.js';
export { ringCapacity, ringSizer, trafficBytes } from './ring-size.js';
export { measureRawRate, type RawRate, type RawRateOptions } from './raw-rate.js';
