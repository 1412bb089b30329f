import { Worker } from 'node:worker_threads';
import { compiledUrl } from '../util/compiled-url.js';
import { RunError, ERRORS } from '../util/errors.js';
const CHIP_WORKER = compiledUrl('../runtime/chip-worker.js', import.meta.url);
export function fromWireError(e) {
    const code = (e.code in ERRORS ? e.code : 'RACKEMU_ERR_WORKER');
    return new RunError(code, e.message, { details: e.details });
}
export class HostAgent {
    hostId;
    workers = new Map();
    listeners = new Map();
    constructor(hostId) {
        this.hostId = hostId;
    }
    /** One message from one chip, or rejection if the chip fails or its worker dies first. */
    expect(chipId, type) {
        return new Promise((resolve, reject) => {
            this.listeners.set(chipId, (m) => {
                if (m.type === type)
                    resolve(m);
                else if (m.type === 'failed')
                    reject(fromWireError(m.error));
            });
        });
    }
    /** Spawns and loads the chips; `onReady` fires as each one is up with its Program and weights. */
    async load(chips, onReady = () => undefined) {
        await Promise.all(chips.map(async (c) => {
            const w = new Worker(CHIP_WORKER, { name: c.init.chipId });
            this.workers.set(c.init.chipId, w);
            w.on('message', (m) => {
                this.listeners.get(c.init.chipId)?.(m);
            });
            const died = (why) => {
                const e = new RunError('RACKEMU_ERR_WORKER', `chip ${c.init.chipId} on host ${this.hostId}: ${why}`);
                this.listeners.get(c.init.chipId)?.({ type: 'failed', chipId: c.init.chipId, error: { code: e.code, message: e.message, details: {} } });
            };
            w.on('error', (err) => died(`worker crashed: ${err.message}`));
            w.on('exit', (code) => {
                if (this.workers.has(c.init.chipId))
                    died(`worker exited with code ${code}`);
            });
            const ready = this.expect(c.init.chipId, 'ready');
            const msg = { type: 'init', init: c.init, weights: c.weights, transport: c.transport };
            w.postMessage(msg, [...c.transferList]);
            await ready;
            onReady(c.init.chipId);
        }));
    }
    /**
     * Runs every chip and waits until each has finished or failed. A chip stuck on a missing frame
     * fails by its own watchdog, so this settles; the coordinator then looks at all failures together
     * to name the root cause rather than whichever chip happened to report first.
     */
    async run(spec) {
        return Promise.all([...this.workers.entries()].map(async ([chipId, w]) => {
            const p = this.expect(chipId, 'done');
            w.postMessage({ type: 'run', spec });
            try {
                const m = await p;
                return { chipId, result: m.result, transport: m.transport, error: null };
            }
            catch (e) {
                const err = e;
                return { chipId, result: null, transport: null, error: { code: err.code, message: err.message, details: err.details } };
            }
        }));
    }
    async readback(chipIds) {
        return Promise.all(chipIds.map(async (chipId) => {
            const p = this.expect(chipId, 'logits');
            this.workers.get(chipId).postMessage({ type: 'readback' });
            const m = await p;
            return { chipId, start: m.start, logits: m.logits };
        }));
    }
    /** Closes every chip's endpoint, then ends the workers. */
    async stop() {
        const workers = [...this.workers.entries()];
        this.workers.clear();
        await Promise.all(workers.map(async ([chipId, w]) => {
            const closed = Promise.race([this.expect(chipId, 'closed'), new Promise((r) => setTimeout(r, 2000))]).catch(() => undefined);
            w.postMessage({ type: 'close' });
            await closed;
            await w.terminate();
        }));
    }
    get chipIds() {
        return [...this.workers.keys()];
    }
}
//# sourceMappingURL=host-agent.js.map