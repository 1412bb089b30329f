import { describe, expect, it } from 'vitest';
import { ControlReassembler, encodeControl } from '../src/control/control-channel.js';
import { RESEND_MS, ReplyLog, RequestLog } from '../src/control/control-link.js';
import { SilenceClock } from '../src/control/silence.js';

describe('control', () => {
  it('control - a lost request is sent again, in order, once the host beats without it', () => {
    const coord = new RequestLog<string>();
    const host = new ReplyLog<string>();
    const r1 = coord.send('load', 0);
    const r2 = coord.send('run a', 10);
    const r3 = coord.send('run b', 20);
    expect([r1, r2, r3]).toEqual([1, 2, 3]);
    // r1 arrives; r2 is lost; r3 arrives after the gap and is dropped
    expect(host.take(r1)).toBe('new');
    expect(host.take(r3)).toBe('gap');
    // a beat soon after: nothing is old enough to send again
    expect(coord.due(host.beat, 500)).toEqual([]);
    // later: both missing requests, in order
    expect(coord.due(host.beat, RESEND_MS + 20)).toEqual([
      { rid: 2, msg: 'run a' },
      { rid: 3, msg: 'run b' },
    ]);
    // sent again just now: not again at once
    expect(coord.due(host.beat, RESEND_MS + 30)).toEqual([]);
    expect(host.take(r2)).toBe('new');
    expect(host.take(r3)).toBe('new');
    // a late duplicate of a request being handled is ignored
    expect(host.take(r2)).toBe('duplicate');
  });

  it('control - a lost reply is sent again from what the host keeps, and dropped once the coordinator has it', () => {
    const coord = new RequestLog<string>();
    const host = new ReplyLog<string>();
    const r1 = coord.send('run a', 0);
    const r2 = coord.send('readback', 0);
    host.take(r1);
    host.take(r2);
    host.answer(r2, 'logits'); // answered first (not queued behind the run), and arrives
    expect(coord.settle(r2)).toBe(true);
    host.answer(r1, 'ran'); // lost on the way
    expect(host.beat).toEqual({ seen: 2, kept: [2, 1] });
    // the coordinator lacks r1's reply and r2's is in: it asks for r1 again, and the host sends the kept one
    expect(coord.due(host.beat, RESEND_MS)).toEqual([{ rid: 1, msg: 'run a' }]);
    expect(host.take(r1)).toBe('answered');
    expect(host.reply(r1)).toBe('ran');
    expect(coord.settle(r1)).toBe(true);
    // a reply that arrives twice is taken once
    expect(coord.settle(r1)).toBe(false);
    expect(coord.acked).toBe(2);
    host.acked(coord.acked);
    expect(host.beat.kept).toEqual([]);
    // acked stops below the oldest request still open
    const r3 = coord.send('run b', 0);
    coord.send('run c', 0);
    coord.settle(r3 + 1);
    expect(coord.acked).toBe(2);
    expect(coord.pending).toBe(1);
  });

  it('control - a message that lost a chunk is dropped and the next one is read whole', () => {
    const big = { type: 'load', bytes: new Uint8Array(300).fill(7) };
    const a = encodeControl(big, 1, 112);
    const b = encodeControl({ type: 'run', n: 2 }, 2, 112);
    const c = encodeControl(big, 3, 112);
    expect(a.length).toBeGreaterThan(2);
    const r = new ControlReassembler();
    const got: unknown[] = [];
    // a's second chunk is lost; c loses its first
    for (const chunk of [a[0], ...a.slice(2), ...b, ...c.slice(1), ...encodeControl('end', 4, 112)]) {
      const m = r.push(chunk);
      if (m !== undefined) got.push(m);
    }
    expect(got).toEqual([{ type: 'run', n: 2 }, 'end']);
    expect(r.dropped).toBe(2);
    // a whole message after drops reassembles
    expect(
      encodeControl(big, 5, 112)
        .map((x) => r.push(x))
        .at(-1),
    ).toEqual(big);
  });

  it("control - silence does not count the time this process's own timers ran late", () => {
    const s = new SilenceClock(1000, 0);
    expect(s.check(1000)).toBe(1000);
    expect(s.check(2000)).toBe(2000);
    // this process stalled for 20 s: the check comes 19 s late, and the stall is not the peer's silence
    expect(s.check(22_000)).toBe(3000);
    s.heard(22_100);
    expect(s.check(23_000)).toBe(900);
    // a peer silent while this process runs on time goes on counting
    for (let t = 24_000; t <= 40_000; t += 1000) s.check(t);
    expect(s.check(41_000)).toBe(18_900);
  });
});
