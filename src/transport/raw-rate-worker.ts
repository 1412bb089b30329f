/**
 * Worker half of measureRawRate: one endpoint, either sending `frames` copies of an encoded frame to its
 * peer or counting what arrives. Protocol with the parent: worker posts 'ready' once its endpoint is open,
 * the sender starts on 'go', the receiver posts 'done' after the last frame, both close on 'close' and
 * post 'closed' with their stats.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { decodeFrame, encodeFrame } from './frame.js';
import { openEndpoint } from './open.js';
import type { TransportConfig } from './types.js';

interface RawRateWorkerData {
  role: 'send' | 'recv';
  chipId: string;
  peer: string;
  config: TransportConfig;
  frameBytes: number;
  frames: number;
}

const wd = workerData as RawRateWorkerData;
const port = parentPort!;

const ep = await openEndpoint(wd.config, wd.chipId, {
  onError: (e) => port.postMessage({ type: 'error', code: e.code, message: e.message }),
});

if (wd.role === 'recv') {
  let n = 0;
  ep.onFrame((frame) => {
    // Read the header as a chip would; the CRC is the chip's cost, not the transport's.
    decodeFrame(frame, { verify: false });
    if (++n === wd.frames) port.postMessage({ type: 'done' });
  });
}

async function sendAll(): Promise<void> {
  const elements = wd.frameBytes >>> 2;
  const template = encodeFrame(
    { src: wd.chipId, dst: wd.peer, step: 0, tick: 0, tensor: 'raw', dtype: 'f32', shape: [elements], seq: 0 },
    new Uint8Array(elements * 4).fill(7),
  );
  for (let i = 0; i < wd.frames; i++) {
    // A fresh buffer per frame, as chips produce (a send owns the frame it is given).
    const f = Buffer.allocUnsafeSlow(template.length);
    f.set(template);
    ep.send(wd.peer, f);
    // Let credits in once enough waits, instead of queueing the whole run in memory.
    if ((i & 63) === 63 && ep.stats().queued > 256) {
      while (ep.stats().queued > 64) await new Promise((r) => setImmediate(r));
    }
  }
  await ep.flush();
}

port.on('message', (m: string) => {
  if (m === 'go') {
    sendAll().catch((e: Error) =>
      port.postMessage({ type: 'error', code: (e as { code?: string }).code, message: e.message }),
    );
  } else if (m === 'close') {
    void ep.close().then(() => {
      port.postMessage({ type: 'closed', stats: ep.stats() });
      port.close();
    });
  }
});
port.postMessage({ type: 'ready' });
