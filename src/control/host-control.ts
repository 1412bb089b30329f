import type { NatsBus } from '../transport/index.js';
import type { Logger } from 'pino';
import {
  ControlReassembler,
  coordSubject,
  ControlSender,
  hostSubject,
  type ControlEnvelope,
} from './control-channel.js';
import { ReplyLog } from './control-link.js';
import { SilenceClock } from './silence.js';
import type { CoordinatorToHost, HostToCoordinator } from './host.js';
import type { HostService, Reply } from './host-service.js';

/**
 * A host agent's end of its control subjects (control-channel.ts): takes the coordinator's requests
 * once each and in order (control-link.ts ReplyLog), hands them to the HostService, sends the replies
 * and keeps them until the coordinator has them, and beats with what it took and kept.
 */
export class HostControl {
  private readonly replies = new ReplyLog<Reply>();
  private readonly reassembler = new ControlReassembler();
  private readonly sender: ControlSender<HostToCoordinator>;
  private queue = Promise.resolve();
  private resolveStopped: () => void = () => undefined;
  private rejectStopped: (e: Error) => void = () => undefined;
  /** Resolves once a stop request was answered; rejects on a malformed message or with `leave`. */
  readonly stopped = new Promise<void>((resolve, reject) => {
    this.resolveStopped = resolve;
    this.rejectStopped = reject;
  });
  /** The coordinator has sent something (its beat or a request). */
  contacted = false;
  /** The coordinator's silence (it beats every second). */
  readonly silence: SilenceClock;
  readonly service: HostService;

  constructor(
    bus: NatsBus,
    deployment: string,
    hostId: string,
    private readonly log: Logger,
    beatMs: number,
    /** The service, given how to send what it streams (samples, chip-ready: never sent again). */
    service: (send: (m: HostToCoordinator) => void) => HostService,
  ) {
    this.sender = new ControlSender(bus, coordSubject(deployment, hostId));
    this.silence = new SilenceClock(beatMs);
    // awaited by the agent's run; until then a rejection is not unhandled
    this.stopped.catch(() => undefined);
    this.service = service((m) => this.sender.post(0, m));
    bus.subscribe(hostSubject(deployment, hostId), (data) => this.onData(data));
  }

  /** The host agent's heartbeat (every second once contacted). */
  beat(): void {
    const { seen, kept } = this.replies.beat;
    this.sender.post(0, { type: 'heartbeat', seen, kept: [...kept] });
  }

  /** Ends `stopped` with `e` (the coordinator fell silent). */
  leave(e: Error): void {
    this.rejectStopped(e);
  }

  private answer(rid: number, reply: Reply): void {
    this.replies.answer(rid, reply);
    this.log.debug({ type: reply.type, rid }, 'control reply sent');
    this.sender.post(rid, reply);
    if (reply.type === 'stopped') this.resolveStopped();
  }

  private onData(data: Uint8Array): void {
    let envelope: ControlEnvelope<CoordinatorToHost> | undefined;
    try {
      envelope = this.reassembler.push(data) as ControlEnvelope<CoordinatorToHost> | undefined;
    } catch (e) {
      this.rejectStopped(e as Error);
      return;
    }
    if (envelope === undefined) return;
    const { rid, m } = envelope;
    this.contacted = true;
    this.silence.heard();
    if (m.type === 'heartbeat') return this.replies.acked(m.acked);
    const take = this.replies.take(rid);
    this.log.debug({ type: m.type, rid, take }, 'control request received');
    const kept = take === 'answered' ? this.replies.reply(rid) : undefined;
    if (kept !== undefined) this.sender.post(rid, kept);
    if (take !== 'new') return;
    const lost = (e: unknown) => this.log.warn({ err: e, rid }, 'control reply not sent');
    // runs queue on the chips in order; other requests are answered as they come
    if (m.type === 'run' || m.type === 'stop' || m.type === 'load') {
      this.queue = this.queue.then(async () => this.answer(rid, await this.service.handle(m))).catch(lost);
    } else {
      this.service
        .handle(m)
        .then((reply) => this.answer(rid, reply))
        .catch(lost);
    }
  }
}
