/**
 * One-hop latency of a transport, in a fresh process: two worker threads with their own endpoints
 * bounce one frame back and forth; one hop = round trip / 2. This is the cost of a frame on the
 * schedule's critical path, where the receiver is asleep waiting for it (measureRawRate, by contrast,
 * streams frames and measures throughput).
 * Usage: node dist/bench/latency-once.js embedded|nats FRAME_BYTES ROUNDS  ->  one JSON line.
 */
import { Worker } from 'node:worker_threads';
import { createEmbeddedFabric, spawnNatsServer, type TransportConfig } from '../src/transport/internal.js';
import { rawFrameSize } from './frames.js';

const [kind, frameBytesArg, roundsArg] = process.argv.slice(2);
if (kind !== 'embedded' && kind !== 'nats')
  throw new Error(`latency-once: transport must be embedded or nats, got ${kind}`);
const frameBytes = Number(frameBytesArg);
const rounds = Number(roundsArg);
const a = 'r0.n0.c0';
const b = 'r0.n0.c1';
const server = kind === 'nats' ? await spawnNatsServer() : null;
const configs: TransportConfig[] = [];
if (kind === 'embedded') {
  const fabric = createEmbeddedFabric([[a, b]]);
  configs.push(fabric.endpointConfig(a), fabric.endpointConfig(b));
} else {
  const config: TransportConfig = { kind: 'nats', servers: server!.url, runId: `ping-${process.pid}` };
  configs.push(config, config);
}
const script = new URL('./ping-worker.js', import.meta.url);
const common = { frameBytes, rounds };
const ping = new Worker(script, { workerData: { role: 'ping', chipId: a, peer: b, config: configs[0], ...common } });
const pong = new Worker(script, { workerData: { role: 'pong', chipId: b, peer: a, config: configs[1], ...common } });
const next = (w: Worker, type: string) =>
  new Promise<{ type: string; ms?: number; message?: string }>((resolve, reject) => {
    const on = (m: { type: string; ms?: number; message?: string }) => {
      if (m.type === 'error') reject(new Error(m.message));
      else if (m.type === type) {
        w.off('message', on);
        resolve(m);
      }
    };
    w.on('message', on);
    w.once('error', reject);
  });
try {
  await Promise.all([next(ping, 'ready'), next(pong, 'ready')]);
  const done = next(ping, 'done');
  ping.postMessage('go');
  const { ms } = await done;
  console.log(
    JSON.stringify({
      transport: kind,
      frame_bytes: frameBytes,
      encoded_frame_bytes: rawFrameSize(frameBytes),
      rounds,
      one_hop_us: (ms! * 1000) / rounds / 2,
    }),
  );
} finally {
  ping.postMessage('close');
  pong.postMessage('close');
  await new Promise((r) => setTimeout(r, 100));
  await Promise.all([ping.terminate(), pong.terminate()]);
  await server?.stop();
}
