/**
 * Holds transport errors until an error handler is registered, then hands them over in order: an
 * endpoint can fail (e.g. a server error) before its owner has wired up onError, and such an error must
 * not vanish. Bounded so a run that never registers a handler cannot grow without limit.
 */
const MAX_KEPT = 100;
export class ErrorRelay {
    handler;
    kept = [];
    droppedCount = 0;
    setHandler(handler) {
        this.handler = handler;
        const kept = this.kept.splice(0);
        for (const e of kept)
            this.call(e);
    }
    report(err) {
        if (this.handler !== undefined) {
            this.call(err);
            return;
        }
        if (this.kept.length < MAX_KEPT)
            this.kept.push(err);
        else
            this.droppedCount++;
    }
    /** Errors not kept because no handler was registered and the buffer was full. */
    get dropped() {
        return this.droppedCount;
    }
    call(err) {
        try {
            this.handler(err);
        }
        catch {
            // A throwing error handler must not break the transport's own bookkeeping (it runs inside
            // socket and port callbacks); there is nowhere further to report it.
        }
    }
}
//# sourceMappingURL=error-relay.js.map