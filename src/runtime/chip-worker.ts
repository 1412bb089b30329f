/**
 * Entry point of one chip's worker thread. The host agent that owns the chip drives it with messages:
 *   init {init, weights, transport} -> ready | failed
 *   run {spec}                      -> done {result, transport stats} | failed
 *   readback                        -> logits {start, logits} (lm_head chips; null elsewhere)
 *   close                           -> closed
 */
import { parentPort } from 'node:worker_threads';
import { openEndpoint } from '../transport/open.js';
import type { ChipEndpoint } from '../transport/types.js';
import { ChipRuntime } from './chip.js';
import { toWireError, type ChipToHost, type HostToChip } from './chip-protocol.js';

const port = parentPort!;
let chip: ChipRuntime | null = null;
let endpoint: ChipEndpoint | null = null;
let chipId = '?';
const post = (m: ChipToHost) => port.postMessage(m);

port.on('message', (msg: HostToChip) => {
  void handle(msg).catch((e: unknown) => post({ type: 'failed', chipId, error: toWireError(e) }));
});

async function handle(msg: HostToChip): Promise<void> {
  switch (msg.type) {
    case 'init':
      chipId = msg.init.chipId;
      chip = new ChipRuntime(msg.init, msg.weights);
      endpoint = await openEndpoint(msg.transport, chipId);
      chip.attach(endpoint);
      post({ type: 'ready', chipId });
      return;
    case 'run': {
      const result = await chip!.run(msg.spec);
      await endpoint!.flush();
      post({ type: 'done', result, transport: endpoint!.stats() });
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
