/**
 * The transport room's public surface. The runtime imports from here and sees only ChipEndpoint;
 * nats.ts (and the NATS client) load lazily through openEndpoint.
 */
export type {
  ChipEndpoint,
  EmbeddedTransportConfig,
  ErrorHandler,
  BundleHandler,
  FrameHandler,
  NatsTransportConfig,
  OpenEndpointOptions,
  TransportConfig,
  TransportKind,
  TransportStats,
} from './types.js';
export { DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_FRAMES } from './types.js';
export { openEndpoint } from './open.js';
export { createEmbeddedFabric, DEFAULT_RING_BYTES, type EmbeddedFabric, type EmbeddedFabricOptions } from './embedded.js';
export { crc32 } from './crc32.js';
export { decodeFrame, encodeFrame, tensorView, FrameTemplate, FRAME_VERSION, type DecodedFrame, type Dtype, type FrameHeader, type FrameHeaderInit, type FrameTemplateInit, type Integrity } from './frame.js';
export { encodeBundle, splitBundle, isBundle, bundleCount, bundleFrameBytes, bundleHeadBytes, bundleRecordBytes, writeBundleHead, BUNDLE_MARKER } from './bundle.js';
export { chunkFrame, chunkHeaderBytes, isChunk, FrameReassembler, CHUNK_MARKER } from './chunk.js';
export { spawnNatsServer, freePort, type SpawnedNatsServer, type SpawnNatsServerOptions } from './nats-server.js';
export { measureRawRate, type RawRate, type RawRateOptions } from './raw-rate.js';
