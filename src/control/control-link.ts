/**
 * Requests and their replies over a channel that may lose whole messages but keeps the order of what
 * arrives: NATS core between a coordinator and a host agent. When a server of the cluster dies, what
 * was in flight on it is gone and its clients reconnect to another; a host left waiting for a request
 * it never got, or a coordinator for a reply that was lost, would wait for ever.
 *
 * Each request gets an id (1, 2, ...). The host agent takes requests in id order, at most once, and
 * keeps each reply until the coordinator has it; its heartbeat says the last id it took and which
 * replies it holds. From a beat, the coordinator sends again what is due: a request older than
 * RESEND_MS that the host has not taken, or one the host answered whose reply never came (the host
 * then sends the kept reply again). The coordinator's beat says up to which id it has every reply, so
 * the host drops what it kept for them. Both sides are plain state machines, fed by hand in tests.
 */

/** A request this old (ms since it was last sent) that a beat shows missing is sent again. */
export const RESEND_MS = 2000;

/** A host agent's beat: the last request id it took (ids come in order), and the ids of the replies it keeps. */
export interface HostBeat {
  readonly seen: number;
  readonly kept: readonly number[];
}

/** The coordinator's side: the requests of one host agent that have no reply yet. */
export class RequestLog<T> {
  private next = 1;
  private readonly open = new Map<number, { readonly msg: T; sentAt: number }>();

  /** Records `msg` as sent at `now`; returns its request id. */
  send(msg: T, now: number): number {
    const rid = this.next++;
    this.open.set(rid, { msg, sentAt: now });
    return rid;
  }

  /** A reply to `rid` came: true the first time, false for a reply sent again that had arrived after all. */
  settle(rid: number): boolean {
    return this.open.delete(rid);
  }

  /** Every request id up to this one has its reply here (the host may drop the replies it kept for them). */
  get acked(): number {
    let low = this.next;
    for (const rid of this.open.keys()) low = Math.min(low, rid);
    return low - 1;
  }

  get pending(): number {
    return this.open.size;
  }

  /** Forgets every open request (the host is gone: what waited on it failed). */
  clear(): void {
    this.open.clear();
  }

  /** The requests to send again after `beat`, in id order (each is marked sent at `now`). */
  due(beat: HostBeat, now: number): { readonly rid: number; readonly msg: T }[] {
    const kept = new Set(beat.kept);
    const out: { rid: number; msg: T }[] = [];
    for (const [rid, o] of [...this.open].sort((a, b) => a[0] - b[0])) {
      if (now - o.sentAt < RESEND_MS) continue;
      if (rid > beat.seen || kept.has(rid)) {
        o.sentAt = now;
        out.push({ rid, msg: o.msg });
      }
    }
    return out;
  }
}

/** What a host agent does with a request it received (ReplyLog.take). */
export type Take =
  /** the next request in order: handle it */
  | 'new'
  /** taken before and answered: send the kept reply again */
  | 'answered'
  /** taken before and still being handled, or a request already dropped: nothing to do */
  | 'duplicate'
  /** an earlier request is missing: drop this one (the coordinator sends both again, in order) */
  | 'gap';

/** The host agent's side: which requests it took, and the replies it keeps until the coordinator has them. */
export class ReplyLog<R> {
  private seen = 0;
  private readonly replies = new Map<number, R>();

  take(rid: number): Take {
    if (rid === this.seen + 1) {
      this.seen = rid;
      return 'new';
    }
    if (rid > this.seen) return 'gap';
    return this.replies.has(rid) ? 'answered' : 'duplicate';
  }

  /** Keeps the reply to `rid` (sent now, and again while the coordinator lacks it). */
  answer(rid: number, reply: R): void {
    this.replies.set(rid, reply);
  }

  reply(rid: number): R | undefined {
    return this.replies.get(rid);
  }

  /** The coordinator has every reply up to `acked`. */
  acked(acked: number): void {
    for (const rid of this.replies.keys()) if (rid <= acked) this.replies.delete(rid);
  }

  get beat(): HostBeat {
    return { seen: this.seen, kept: [...this.replies.keys()] };
  }
}
