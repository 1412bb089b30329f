/**
 * The transport floor: how many frames and bytes per second a transport moves between two chips when
 * nothing else happens. Sender and receiver are two worker threads with their own endpoints, exactly as
 * chips use them, sending frames in the real encoding; the benchmarks compare the emulator's wall time
 * per token against the time this rate needs for the schedule's messages.
 *
 * The clock runs from 'go' (both endpoints open) to the receiver's last frame. Not included: encoding
 * and CRC (the frame is encoded once and copied per send), receiver-side CRC verification.
 */

import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { TransportError } from '../util/errors.js';
import { compiledUrl } from '../util/compiled-url.js';
import { createEmbeddedFabric } from './embedded-fabric.js';
import { spawnNatsServer } from './nats-server.js';
import type { TransportConfig } from './types.js';

export interface RawRateOptions {
  /** Payload bytes per frame (rounded down to whole f32 elements). */
  frameBytes: number;
  /** Frames to send. */
  frames: number;
  /** NATS server; default: spawn a private one for the measurement. */
  url?: string;
  /** NATS credit window (default the transport's). */
  window?: { frames?: number; bytes?: number };
}

export interface RawRate {
  framesPerS: number;
  /** Payload bytes per second (frameBytes x framesPerS). */
  bytesPerS: number;
}

interface WorkerMsg {
  type: 'ready' | 'done' | 'closed' | 'error';
  code?: string;
  message?: string;
}

export async function measureRawRate(kind: 'embedded' | 'nats', opts: RawRateOptions): Promise<RawRate> {
  if (!(opts.frames > 0) || !(opts.frameBytes >= 4)) {
    throw new TransportError('RACKEMU_ERR_TRANSPORT_CONFIG', `measureRawRate needs frames > 0 and frameBytes >= 4`);
  }
  const a = 'r0.n0.c0';
  const b = 'r0.n0.c1';
  let server: Awaited<ReturnType<typeof spawnNatsServer>> | undefined;
  const configs: TransportConfig[] = [];
  if (kind === 'embedded') {
    const fabric = createEmbeddedFabric([[a, b]]);
    configs.push(fabric.endpointConfig(a), fabric.endpointConfig(b));
  } else {
    let url = opts.url;
    if (url === undefined) {
      server = await spawnNatsServer();
      url = server.url;
    }
    const config: TransportConfig = {
      kind: 'nats',
      servers: url,
      runId: `rawrate-${process.pid}-${Date.now().toString(36)}`,
      window: opts.window,
    };
    configs.push(config, config);
  }
  const script = compiledUrl('./raw-rate-worker.js', import.meta.url);
  const common = { frameBytes: opts.frameBytes, frames: opts.frames };
  const sender = new Worker(script, {
    workerData: { role: 'send', chipId: a, peer: b, config: configs[0], ...common },
  });
  const receiver = new Worker(script, {
    workerData: { role: 'recv', chipId: b, peer: a, config: configs[1], ...common },
  });
  const waitFor = (w: Worker, type: WorkerMsg['type']): Promise<void> =>
    new Promise((resolve, reject) => {
      const onMsg = (m: WorkerMsg): void => {
        if (m.type === 'error') {
          off();
          reject(
            new TransportError('RACKEMU_ERR_TRANSPORT', `raw-rate worker failed: ${m.message}`, {
              details: { code: m.code },
            }),
          );
        } else if (m.type === type) {
          off();
          resolve();
        }
      };
      const onErr = (e: Error): void => {
        off();
        reject(new TransportError('RACKEMU_ERR_WORKER', `raw-rate worker crashed: ${e.message}`, { cause: e }));
      };
      const off = (): void => {
        w.off('message', onMsg);
        w.off('error', onErr);
      };
      w.on('message', onMsg);
      w.on('error', onErr);
    });
  try {
    await Promise.all([waitFor(sender, 'ready'), waitFor(receiver, 'ready')]);
    const done = waitFor(receiver, 'done');
    const t0 = performance.now();
    sender.postMessage('go');
    await done;
    const seconds = (performance.now() - t0) / 1000;
    await Promise.all([
      waitFor(sender, 'closed').then(() => undefined),
      waitFor(receiver, 'closed').then(() => undefined),
      Promise.resolve().then(() => {
        sender.postMessage('close');
        receiver.postMessage('close');
      }),
    ]);
    const framesPerS = opts.frames / seconds;
    return { framesPerS, bytesPerS: framesPerS * (opts.frameBytes & ~3) };
  } finally {
    await Promise.all([sender.terminate(), receiver.terminate()]);
    if (server) await server.stop();
  }
}
