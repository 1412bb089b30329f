/**
 * The start-up baseline's worker: does nothing but say 'ready', then idles (its parentPort listener keeps
 * the thread alive, like a chip waiting for its run) until the parent terminates it.
 */
import { parentPort } from 'node:worker_threads';
const port = parentPort;
port.on('message', () => undefined);
port.postMessage('ready');
//# sourceMappingURL=bare-worker.js.map