/**
 * Second start-up baseline: a worker that loads the same modules a chip worker loads
 * (src/runtime/chip-worker.ts imports), then says 'ready' and idles. The difference to bare-worker.ts is
 * the cost of each isolate loading and compiling the chip runtime's module graph.
 */
import { parentPort } from 'node:worker_threads';
import '../src/runtime/chip.js';
import '../src/transport/open.js';
import '../src/util/errors.js';

const port = parentPort!;
port.on('message', () => undefined);
port.postMessage('ready');
