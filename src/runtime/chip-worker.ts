/**
 * Entry point of one chip's worker thread. The host agent that owns the chip drives it with messages:
 *   init {init, weights, transport} -> ready | failed
 *   run {spec}                      -> samples* (sampler, streaming) then done {result, transport stats} | failed
 *   readback                        -> logits {start, logits} (lm_head chips; null elsewhere)
 *   close                           -> closed
 */
import { parentPort } from 'node:worker_threads';
import { openEndpoint, type ChipEndpoint, type TransportStats } from '../transport/index.js';
import { ChipRuntime } from './chip.js';
import { toWireError, type ChipToHost, type HostToChip } from './chip-protocol.js';
import type { StepSamples } from './chip-types.js';

const port = parentPort!;
let chip: ChipRuntime | null = null;
let endpoint: ChipEndpoint | null = null;
let chipId = '?';
const post = (m: ChipToHost) => port.postMessage(m);
/**
 * Beats at most this often, from a timer whenever the event loop is free (between runs, awaiting the
 * transport) and from inside blocking waits: enough for a host to tell a hung chip within seconds,
 * cheap on hundreds of chips.
 */
const BEAT_MS = 1000;
let lastBeat = 0;
function beat(): void {
  const now = Date.now();
  if (now - lastBeat < BEAT_MS) return;
  lastBeat = now;
  post({ type: 'alive' });
}

/**
 * Messages are handled one after another: a host agent may queue the next run (the next window of a
 * serving stream) while this one is still running, and a chip runs its windows in order.
 */
setInterval(beat, BEAT_MS).unref();

let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: HostToChip) => {
  queue = queue.then(() => handle(msg)).catch((e: unknown) => post({ type: 'failed', chipId, error: toWireError(e) }));
});

/** This run's share of the endpoint's counters (queued and maxInFlight are gauges: as they are now). */
function statsSince(now: TransportStats, before: TransportStats): TransportStats {
  return {
    ...now,
    framesSent: now.framesSent - before.framesSent,
    bytesSent: now.bytesSent - before.bytesSent,
    framesReceived: now.framesReceived - before.framesReceived,
    bytesReceived: now.bytesReceived - before.bytesReceived,
    creditStalls: now.creditStalls - before.creditStalls,
    sleeps: now.sleeps - before.sleeps,
    messagesSent: now.messagesSent - before.messagesSent,
  };
}

async function handle(msg: HostToChip): Promise<void> {
  switch (msg.type) {
    case 'init':
      chipId = msg.init.chipId;
      chip = new ChipRuntime(msg.init, msg.weights, beat);
      // A chip always polls its endpoint while it runs (ChipRuntime.waitSync): no event-loop delivery.
      endpoint = await openEndpoint(msg.transport, chipId, { delivery: 'poll' });
      chip.attach(endpoint);
      post({ type: 'ready', chipId });
      return;
    case 'run': {
      const before = endpoint!.stats();
      const stream = msg.spec.streamTokens
        ? (samples: StepSamples) => post({ type: 'samples', chipId, samples })
        : undefined;
      const result = await chip!.run(msg.spec, stream);
      await endpoint!.flush();
      post({ type: 'done', result, transport: statsSince(endpoint!.stats(), before) });
      return;
    }
    case 'readback': {
      const l = chip?.lastLogits ?? null;
      post({ type: 'logits', chipId, start: l?.start ?? 0, logits: l?.logits ?? null });
      return;
    }
    case 'close':
      await endpoint?.close();
      post({ type: 'closed', chipId });
      port.close();
      return;
  }
}
