/**
 * Link reservations: every directed link holds a sorted list of disjoint busy intervals, so by
 * construction no link carries two transfers in the same tick. Transfers are cut-through: link i
 * of a route is busy from depart + (latency of links before it) for the serialisation time.
 */
export class LinkCalendar {
    fabric;
    /** Per link: flat [start0, end0, start1, end1, ...], sorted, disjoint. */
    busy = new Map();
    constructor(fabric) {
        this.fabric = fabric;
    }
    /** Earliest departure >= ready at which every link of the route is free for its window; reserves it. */
    reserve(links, ready, busyTicks) {
        let t = ready;
        for (;;) {
            let moved = false;
            let offset = 0;
            for (const id of links) {
                const s = t + offset;
                const conflictEnd = this.conflict(id, s, s + busyTicks);
                if (conflictEnd >= 0) {
                    t = conflictEnd - offset;
                    moved = true;
                    break;
                }
                offset += this.fabric.links[id].latencyTicks;
            }
            if (!moved)
                break;
        }
        let offset = 0;
        for (const id of links) {
            this.insert(id, t + offset, t + offset + busyTicks);
            offset += this.fabric.links[id].latencyTicks;
        }
        return t;
    }
    /** End of the first interval overlapping [s, e), or -1. */
    conflict(id, s, e) {
        const list = this.busy.get(id);
        if (!list)
            return -1;
        // first interval whose end > s (ends are increasing because intervals are disjoint and sorted)
        let lo = 0;
        let hi = list.length / 2;
        while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if (list[2 * mid + 1] > s)
                hi = mid;
            else
                lo = mid + 1;
        }
        if (lo < list.length / 2 && list[2 * lo] < e)
            return list[2 * lo + 1];
        return -1;
    }
    insert(id, s, e) {
        let list = this.busy.get(id);
        if (!list) {
            list = [];
            this.busy.set(id, list);
        }
        let i = list.length / 2;
        while (i > 0 && list[2 * (i - 1)] > s)
            i--;
        list.splice(2 * i, 0, s, e);
    }
}
//# sourceMappingURL=links.js.map