import { isRackemuError } from '../util/errors.js';
export function toWireError(e) {
    if (isRackemuError(e))
        return { code: e.code, message: e.message, details: e.details };
    const err = e;
    return { code: 'RACKEMU_ERR_WORKER', message: err?.stack ?? String(e), details: {} };
}
//# sourceMappingURL=chip-protocol.js.map