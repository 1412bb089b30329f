/**
 * A FIFO queue with O(1) push and shift. Array.prototype.shift is O(n) once an array leaves V8's fast
 * path, and a credit-stalled destination can hold thousands of messages.
 */
export class Fifo {
    items = [];
    head = 0;
    get length() {
        return this.items.length - this.head;
    }
    push(item) {
        this.items.push(item);
    }
    peek() {
        return this.head < this.items.length ? this.items[this.head] : undefined;
    }
    shift() {
        if (this.head >= this.items.length)
            return undefined;
        const item = this.items[this.head];
        this.items[this.head++] = undefined; // let the message be collected now
        if (this.head === this.items.length) {
            this.items = [];
            this.head = 0;
        }
        else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
            this.items = this.items.slice(this.head);
            this.head = 0;
        }
        return item;
    }
    clear() {
        this.items = [];
        this.head = 0;
    }
}
//# sourceMappingURL=fifo.js.map