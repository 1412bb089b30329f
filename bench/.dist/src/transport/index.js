export { DEFAULT_WINDOW_BYTES, DEFAULT_WINDOW_FRAMES } from './types.js';
export { openEndpoint } from './open.js';
export { createEmbeddedFabric } from './embedded.js';
export { crc32 } from './crc32.js';
export { decodeFrame, encodeFrame, tensorView, FRAME_VERSION } from './frame.js';
export { chunkFrame, chunkHeaderBytes, isChunk, FrameReassembler, CHUNK_MARKER } from './chunk.js';
export { spawnNatsServer, freePort } from './nats-server.js';
export { measureRawRate } from './raw-rate.js';
//# sourceMappingURL=index.js.map