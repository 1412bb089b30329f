/**
 * One transport floor measurement in a fresh process: measureRawRate between two worker threads.
 * Usage: node dist/bench/raw-rate-once.js embedded|nats FRAME_BYTES FRAMES  ->  one JSON line.
 * FRAME_BYTES is measureRawRate's: payload bytes; the frame's header comes on top (rawFrameSize).
 * For nats, a private nats-server is spawned here and its url passed in.
 */
import { measureRawRate, spawnNatsServer } from '../src/transport/internal.js';
import { rawFrameSize } from './frames.js';

const [kind, frameBytesArg, framesArg] = process.argv.slice(2);
if (kind !== 'embedded' && kind !== 'nats')
  throw new Error(`raw-rate-once: transport must be embedded or nats, got ${kind}`);
const frameBytes = Number(frameBytesArg);
const frames = Number(framesArg);
const server = kind === 'nats' ? await spawnNatsServer() : null;
try {
  const r = await measureRawRate(kind, { frameBytes, frames, url: server?.url });
  const encoded = rawFrameSize(frameBytes);
  console.log(
    JSON.stringify({
      transport: kind,
      frame_bytes: frameBytes,
      encoded_frame_bytes: encoded,
      frames,
      frames_per_s: r.framesPerS,
      payload_bytes_per_s: r.bytesPerS,
      wire_bytes_per_s: r.framesPerS * encoded,
      peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    }),
  );
} finally {
  await server?.stop();
}
