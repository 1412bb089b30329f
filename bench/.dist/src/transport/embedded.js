/**
 * Embedded transport: chips that are threads of one process talk over MessageChannels.
 *
 * The spawning thread builds one channel per unordered chip pair that the schedule uses (a MessagePort
 * is duplex and keeps per-direction order, so one channel serves both directions at half the ports),
 * and hands each chip the ports whose far ends its peers hold. A frame is posted as its ArrayBuffer in
 * the transfer list: the bytes move between threads without a copy.
 *
 * There is no credit flow control here: a transferred frame costs the same memory whether it waits in
 * the sender's queue or in the receiver's port, and nothing can be flooded (no socket, no server).
 */
import { MessageChannel } from 'node:worker_threads';
import { TransportError } from '../util/errors.js';
import { ErrorRelay } from './error-relay.js';
function configError(message, details = {}) {
    return new TransportError('RACKEMU_ERR_TRANSPORT_CONFIG', message, { details });
}
/**
 * Build the channels for a run. `pairs` are the (src, dst) transfers the schedule uses (direction and
 * repeats do not matter; self-pairs need no channel); `chips` adds chips that have no traffic.
 */
export function createEmbeddedFabric(pairs, chips = []) {
    const ports = new Map();
    const ensure = (c) => {
        let r = ports.get(c);
        if (r === undefined) {
            r = Object.create(null);
            ports.set(c, r);
        }
        return r;
    };
    for (const c of chips)
        ensure(c);
    for (const [a, b] of pairs) {
        const pa = ensure(a);
        const pb = ensure(b);
        if (a === b || pa[b] !== undefined)
            continue;
        const { port1, port2 } = new MessageChannel();
        pa[b] = port1;
        pb[a] = port2;
    }
    const taken = new Set();
    return {
        chips: [...ports.keys()],
        endpointConfig(chipId) {
            const p = ports.get(chipId);
            if (p === undefined)
                throw configError(`chip ${chipId} is not part of this embedded fabric`, { chipId });
            if (taken.has(chipId))
                throw configError(`the embedded config of chip ${chipId} was already handed out`, { chipId });
            taken.add(chipId);
            return { config: { kind: 'embedded', chipId, ports: p }, transferList: Object.values(p) };
        },
    };
}
export class EmbeddedEndpoint {
    kind = 'embedded';
    chipId;
    ports;
    errors = new ErrorRelay();
    handler;
    /** Loopback frames sent before onFrame was called. */
    early = [];
    closed = false;
    framesSent = 0;
    bytesSent = 0;
    framesReceived = 0;
    bytesReceived = 0;
    constructor(config, onError) {
        this.chipId = config.chipId;
        this.ports = new Map(Object.entries(config.ports));
        if (onError)
            this.errors.setHandler(onError);
        for (const [peer, port] of this.ports) {
            port.on('messageerror', (e) => this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `a message from ${peer} could not be deserialised`, { cause: e, details: { src: peer, dst: this.chipId } })));
        }
    }
    send(dst, frame) {
        const port = this.ports.get(dst);
        this.framesSent++;
        this.bytesSent += frame.length;
        if (this.closed) {
            this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `send to ${dst} after close`, { details: { src: this.chipId, dst } }));
            return;
        }
        if (port === undefined) {
            if (dst === this.chipId) {
                // Loopback keeps the asynchronous delivery every other destination has.
                const copy = frame;
                queueMicrotask(() => this.deliver(copy, dst));
                return;
            }
            throw configError(`no embedded channel from ${this.chipId} to ${dst}: the pair was not in the fabric's pair list`, {
                src: this.chipId,
                dst,
            });
        }
        const buf = frame.buffer;
        let ab;
        if (frame.byteOffset === 0 && frame.byteLength === buf.byteLength && buf instanceof ArrayBuffer)
            ab = buf;
        else
            ab = frame.slice().buffer; // a view into a larger (or shared) buffer: copy the frame alone
        port.postMessage(ab, [ab]);
    }
    onFrame(handler) {
        const first = this.handler === undefined;
        this.handler = handler;
        if (!first || this.closed)
            return;
        const early = this.early.splice(0);
        for (const [f, src] of early)
            this.deliver(f, src);
        // Attaching the listener starts the port; until then the port itself holds early frames in order.
        for (const [peer, port] of this.ports) {
            port.on('message', (ab) => this.deliver(new Uint8Array(ab), peer));
        }
    }
    onError(handler) {
        this.errors.setHandler(handler);
    }
    flush() {
        // postMessage has already handed every frame to the receiving port.
        return Promise.resolve();
    }
    async close() {
        if (this.closed)
            return;
        this.closed = true;
        // Closing one end closes the channel; frames already posted by either side are still delivered.
        for (const port of this.ports.values())
            port.close();
    }
    stats() {
        return {
            framesSent: this.framesSent,
            bytesSent: this.bytesSent,
            framesReceived: this.framesReceived,
            bytesReceived: this.bytesReceived,
            creditStalls: 0,
            queued: 0,
            maxInFlight: 0,
        };
    }
    deliver(frame, src) {
        const h = this.handler;
        if (h === undefined) {
            this.early.push([frame, src]);
            return;
        }
        this.framesReceived++;
        this.bytesReceived += frame.length;
        try {
            h(frame, src);
        }
        catch (e) {
            this.errors.report(new TransportError('RACKEMU_ERR_TRANSPORT', `frame handler of ${this.chipId} threw on a frame from ${src}`, { cause: e, details: { src, dst: this.chipId } }));
        }
    }
}
//# sourceMappingURL=embedded.js.map