/**
 * Worker half of latency-once.ts: one endpoint of the project's transport. 'ping' sends a frame to its
 * peer and waits for it to come back, `rounds` times, and posts the elapsed milliseconds; 'pong' sends
 * every frame it receives straight back (a fresh copy, as a chip would send a fresh frame).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeFrame, encodeFrame, openEndpoint, type TransportConfig } from '../src/transport/internal.js';

interface PingData {
  role: 'ping' | 'pong';
  chipId: string;
  peer: string;
  config: TransportConfig;
  frameBytes: number;
  rounds: number;
}

const wd = workerData as PingData;
const port = parentPort!;
const ep = await openEndpoint(wd.config, wd.chipId, {
  onError: (e) => port.postMessage({ type: 'error', message: e.message }),
});
const copy = (f: Uint8Array): Buffer => {
  const b = Buffer.allocUnsafeSlow(f.length);
  b.set(f);
  return b;
};
const elements = Math.max(1, wd.frameBytes >>> 2);
const template = encodeFrame(
  { src: wd.chipId, dst: wd.peer, step: 0, tick: 0, tensor: 'raw', dtype: 'f32', shape: [elements], seq: 0 },
  new Uint8Array(elements * 4),
);

let left = wd.rounds;
let t0 = 0;
ep.onFrame((frame) => {
  decodeFrame(frame, { verify: false });
  if (wd.role === 'pong') {
    ep.send(wd.peer, copy(frame));
    return;
  }
  if (--left > 0) ep.send(wd.peer, copy(template));
  else port.postMessage({ type: 'done', ms: performance.now() - t0 });
});
port.on('message', (m: string) => {
  if (m === 'go') {
    t0 = performance.now();
    ep.send(wd.peer, copy(template));
  } else if (m === 'close') {
    void ep.close().then(() => port.close());
  }
});
port.postMessage({ type: 'ready' });
