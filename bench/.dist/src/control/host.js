import { fork } from 'node:child_process';
import { chipWeights } from '../runtime/chip-weights.js';
import { compiledUrl } from '../util/compiled-url.js';
import { RunError } from '../util/errors.js';
import { fromWireError, HostAgent } from './host-agent.js';
/** The weight slices a chip's Program needs (none in timing fidelity). */
export function weightsFor(init, store) {
    if (init.fidelity === 'timing' || store === null)
        return {};
    const kernels = [];
    for (const kind of ['prefill', 'decode'])
        for (const i of init.program[kind].instructions)
            if (i.kind === 'compute')
                kernels.push(i.kernel);
    return chipWeights(init.model, kernels, store);
}
export class LocalHost {
    hostId;
    chips;
    store;
    agent;
    constructor(hostId, chips, store) {
        this.hostId = hostId;
        this.chips = chips;
        this.store = store;
        this.agent = new HostAgent(hostId);
    }
    load(onReady) {
        const chips = this.chips.map((c) => ({ ...c, weights: weightsFor(c.init, this.store) }));
        return this.agent.load(chips, onReady);
    }
    run(spec) {
        return this.agent.run(spec);
    }
    readback(chipIds) {
        return this.agent.readback(chipIds);
    }
    stop() {
        return this.agent.stop();
    }
}
const HOST_MAIN = compiledUrl('./host-main.js', import.meta.url);
export class RemoteHost {
    hostId;
    chips;
    model;
    child = null;
    pending = null;
    onReady = () => undefined;
    constructor(hostId, chips, model) {
        this.hostId = hostId;
        this.chips = chips;
        this.model = model;
    }
    request(msg, reply) {
        return new Promise((resolve, reject) => {
            this.pending = { type: reply, resolve: resolve, reject };
            this.child.send(msg);
        });
    }
    load(onReady) {
        this.onReady = onReady;
        const child = fork(HOST_MAIN, [this.hostId], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        this.child = child;
        child.on('message', (m) => {
            if (m.type === 'chip-ready')
                return this.onReady(m.chipId);
            const p = this.pending;
            if (!p)
                return;
            if (m.type === 'error') {
                this.pending = null;
                p.reject(fromWireError(m.error));
            }
            else if (m.type === p.type) {
                this.pending = null;
                p.resolve(m);
            }
        });
        child.on('exit', (code, signal) => {
            const p = this.pending;
            this.pending = null;
            p?.reject(new RunError('RACKEMU_ERR_WORKER', `host agent ${this.hostId} exited (${signal ?? `code ${code}`})`));
        });
        return this.request({ type: 'load', hostId: this.hostId, chips: this.chips.map((c) => ({ init: c.init, transport: c.transport })), model: this.model }, 'loaded').then(() => undefined);
    }
    async run(spec) {
        return (await this.request({ type: 'run', spec }, 'ran')).outcomes;
    }
    async readback(chipIds) {
        return (await this.request({ type: 'readback', chipIds: [...chipIds] }, 'logits')).logits;
    }
    async stop() {
        const child = this.child;
        if (!child || child.exitCode !== null)
            return;
        const exited = new Promise((r) => child.once('exit', r));
        await Promise.race([this.request({ type: 'stop' }, 'stopped').catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
        child.kill();
        await exited;
    }
}
//# sourceMappingURL=host.js.map