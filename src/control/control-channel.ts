import { deserialize, serialize } from 'node:v8';
import { chipToken, type NatsBus } from '../transport/index.js';
import { RunError } from '../util/errors.js';

/**
 * The control protocol between a coordinator and its host agents over NATS (DESIGN.md, "One control
 * protocol"): host agents in this process's children or on other machines are driven by the same
 * messages (host.ts: CoordinatorToHost, HostToCoordinator).
 *
 * Subjects of a deployment NAME (host ids have dots, which NATS reads as separators: '.' -> '_'):
 *   rackemu.NAME.ctl.join         a host agent announces itself, every second until it is loaded
 *   rackemu.NAME.ctl.host.<host>  coordinator -> host agent: load, run, readback, stop
 *   rackemu.NAME.ctl.coord.<host> host agent -> coordinator: replies, streamed samples, heartbeats
 *   rackemu.NAME.ctl.ordinal.<n>  coordinator -> a host agent that joined by ordinal: its host id
 * The chips' data subjects are rackemu.NAME.c.* and rackemu.NAME.k.* (transport/nats-subjects.ts), so
 * a deployment's permissions are the one subject tree rackemu.NAME.>.
 *
 * Messages are Node's structured-clone serialisation (v8.serialize: typed arrays and nested objects
 * survive as they do over IPC), split into chunks below the server's max payload; chunks of one
 * message travel in order on one subject from one connection, which NATS keeps in order. NATS may
 * lose messages when a server of a cluster dies: a message missing a chunk is dropped, and requests
 * and replies carry the ids that let control-link.ts send them again.
 */

export const joinSubject = (deployment: string) => `rackemu.${deployment}.ctl.join`;
export const hostSubject = (deployment: string, hostId: string) =>
  `rackemu.${deployment}.ctl.host.${chipToken(hostId)}`;
export const coordSubject = (deployment: string, hostId: string) =>
  `rackemu.${deployment}.ctl.coord.${chipToken(hostId)}`;
/** Where the coordinator answers a host agent that joined by ordinal with its host id. */
export const ordinalSubject = (deployment: string, ordinal: number) => `rackemu.${deployment}.ctl.ordinal.${ordinal}`;

/**
 * What travels on a host's control subjects: a message and, for a request or its reply, the request's
 * id (control-link.ts); 0 for what is never sent again (heartbeats, streamed samples, chip-ready).
 */
export interface ControlEnvelope<T> {
  readonly rid: number;
  readonly m: T;
}

/**
 * One side's outgoing control subject (the coordinator's to a host, a host's to the coordinator):
 * each message in its envelope, split into chunks, numbered in the order sent.
 */
export class ControlSender<T> {
  private seq = 0;

  constructor(
    private readonly bus: Pick<NatsBus, 'publish' | 'maxPayload'>,
    private readonly subject: string,
  ) {}

  post(rid: number, m: T): void {
    const envelope: ControlEnvelope<T> = { rid, m };
    for (const c of encodeControl(envelope, this.seq++, this.bus.maxPayload)) this.bus.publish(this.subject, c);
  }
}

/** A host agent's announcement: its host id, or its ordinal among the deployment's hosts (Kubernetes). */
export type JoinMessage = { readonly hostId: string } | { readonly ordinal: number };

/** Chunk header: u32 message number, u32 chunk index, u32 chunk count. */
const HEAD = 12;

/** `message` as the chunks to publish, each at most `maxPayload` bytes. */
export function encodeControl(message: unknown, seq: number, maxPayload: number): Uint8Array[] {
  const body = serialize(message);
  const room = Math.max(1, maxPayload - HEAD);
  const count = Math.max(1, Math.ceil(body.length / room));
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const part = body.subarray(i * room, Math.min(body.length, (i + 1) * room));
    const chunk = new Uint8Array(HEAD + part.length);
    const view = new DataView(chunk.buffer);
    view.setUint32(0, seq >>> 0, true);
    view.setUint32(4, i, true);
    view.setUint32(8, count, true);
    chunk.set(part, HEAD);
    out.push(chunk);
  }
  return out;
}

/** Reassembles the control messages of one subject from their chunks, in order. */
export class ControlReassembler {
  private parts: Uint8Array[] = [];
  private seq = -1;
  private skipping = false;
  /** Messages dropped because a chunk of theirs was lost. */
  dropped = 0;

  /**
   * The message this chunk completes, or undefined. A message one of whose chunks was lost is dropped
   * (counted in `dropped`). Throws RunError on a chunk too short to carry its header.
   */
  push(chunk: Uint8Array): unknown {
    if (chunk.length < HEAD) throw new RunError('RACKEMU_ERR_TRANSPORT', `control chunk of ${chunk.length} bytes`);
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const seq = view.getUint32(0, true);
    const index = view.getUint32(4, true);
    const count = view.getUint32(8, true);
    if (index === 0) {
      if (this.parts.length > 0) this.dropped++; // the previous message never got its last chunk
      this.parts = [];
      this.seq = seq;
      this.skipping = false;
    } else if (this.skipping && seq === this.seq) {
      return undefined;
    } else if (seq !== this.seq || index !== this.parts.length) {
      // a chunk of this message (or its start) was lost: skip the rest of it
      this.dropped++;
      this.parts = [];
      this.seq = seq;
      this.skipping = true;
      return undefined;
    }
    this.parts.push(chunk.subarray(HEAD));
    if (this.parts.length < count) return undefined;
    const body = Buffer.concat(this.parts);
    this.parts = [];
    return deserialize(body);
  }
}
