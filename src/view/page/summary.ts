import {
  CHIP_STATE_CODES,
  type ChipStateCode,
  type ViewFaultEvent,
  type ViewLayout,
  type ViewUpdate,
} from '../protocol.js';

function num(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Fault events the panel lists (the latest first). */
const EVENTS_SHOWN = 12;

/**
 * The summary panel: predicted against measured virtual latency and speed, this machine's wall time
 * per token, requests, faults, and how many chips are in each state. Rewritten whole when its text
 * changes (a few dozen cells: cheaper than diffing them).
 */
export class Summary {
  private readonly events: ViewFaultEvent[] = [];
  private shown = '';

  constructor(private readonly root: HTMLElement) {}

  render(layout: ViewLayout, u: ViewUpdate): void {
    for (const e of u.faults) this.events.unshift(e);
    this.events.length = Math.min(this.events.length, EVENTS_SHOWN);
    const s = u.summary;
    const m = s.measured;
    const p = layout.predicted;
    const counts = new Map<string, number>();
    for (let i = 0; i < u.states.length; i++) counts.set(u.states[i], (counts.get(u.states[i]) ?? 0) + 1);
    const chipRows = (Object.keys(CHIP_STATE_CODES) as ChipStateCode[])
      .map(
        (code) =>
          `<tr><th>${CHIP_STATE_CODES[code]}</th><td data-count="${CHIP_STATE_CODES[code]}">${counts.get(code) ?? 0}</td></tr>`,
      )
      .join('');
    const events = this.events
      .map(
        (e) =>
          `<li class="ev-${e.what}">${e.what} ${esc(e.kind)} ${esc(e.target)} <span class="muted">${esc(e.detail)}</span></li>`,
      )
      .join('');
    const html = `
      <h3>Virtual time (the emulated hardware)</h3>
      <table>
        <tr><th></th><td class="muted">predicted</td><td class="muted">measured</td></tr>
        <tr><th>TTFT (ms)</th><td>${num(p.ttftMs, 3)}</td><td data-measured="ttft">${num(m?.ttftMs, 3)}</td></tr>
        <tr><th>TPOT (ms)</th><td>${num(p.tpotMs, 4)}</td><td data-measured="tpot">${num(m?.tpotMs, 4)}</td></tr>
        <tr><th>tokens/s per user</th><td>${num(p.tokensPerSPerUser, 1)}</td><td data-measured="tps">${num(m?.tokensPerSPerUser, 1)}</td></tr>
      </table>
      <p class="muted">measured: mean of the last ${m?.requests ?? 0} finished request(s), TTFT with its wait for a batch slot; predicted: one request alone, at the Plan's prompt length</p>
      <h3>This machine</h3>
      <table>
        <tr><th>wall ms per token</th><td data-measured="wall">${num(m?.wallMsPerToken, 2)}</td></tr>
        <tr><th>requests running / waiting</th><td data-requests="in-flight">${s.running} / ${s.waiting}</td></tr>
        <tr><th>requests finished</th><td data-requests="finished">${s.finished}</td></tr>
        <tr><th>steps run</th><td data-steps>${s.stepsRun}</td></tr>
      </table>
      <h3>Faults</h3>
      <table>
        <tr><th>injected / detected / recovered</th>
          <td data-faults>${s.faults.injected} / ${s.faults.detected} / ${s.faults.recovered}</td></tr>
      </table>
      <ul class="events">${events}</ul>
      <h3>Chips</h3>
      <table>${chipRows}</table>
      <h3>Plan ${layout.planId}</h3>
      <p class="why">${esc(layout.why)}</p>`;
    // most updates change nothing here (lockstep: the same counts step after step)
    if (html === this.shown) return;
    this.shown = html;
    this.root.innerHTML = html;
  }
}
