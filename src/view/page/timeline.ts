import { TIMELINE_STEPS, type ViewFaultEvent, type ViewLayout, type ViewStep } from '../protocol.js';

const COLOURS = { decode: [79, 163, 255], prefill: [178, 128, 255] } as const;
const MARK = { injected: '#ff9f1a', detected: '#ff4d4d', recovered: '#5fd38d' } as const;
/** Width of a step's offscreen drawing, scaled to the step's width on the strip. */
const SPRITE_WIDTH = 768;
/** A pause between steps is drawn at most this many steps wide. */
const PAUSE_STEPS = 4;

/**
 * The timeline strip: the last TIMELINE_STEPS steps on the virtual clock, a row per rack shaded by the
 * share of its chips at work in each stretch of the step (the Plan's profile of that kind of step),
 * the step's critical path drawn across the racks it visits, and fault events as vertical marks.
 * Redrawn only when steps or faults arrive.
 */
export class Timeline {
  private steps: ViewStep[] = [];
  private faults: { event: ViewFaultEvent; tick: number }[] = [];
  private readonly sprites = new Map<string, HTMLCanvasElement>();

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly axis: HTMLElement,
  ) {}

  /** Adds what an update brought; returns whether anything changed. */
  add(steps: readonly ViewStep[], faults: readonly ViewFaultEvent[]): boolean {
    if (steps.length === 0 && faults.length === 0) return false;
    const end = this.steps.length === 0 ? 0 : this.steps[this.steps.length - 1].tick;
    if (steps.length > 0 && steps[0].tick < end) {
      // a new timeline (an experiment's faulted run starts its clock again): the old steps are another run's
      this.steps = [];
      this.faults = [];
    }
    this.steps.push(...steps);
    if (this.steps.length > TIMELINE_STEPS) this.steps = this.steps.slice(-TIMELINE_STEPS);
    const last = this.steps[this.steps.length - 1];
    const now = last === undefined ? 0 : last.tick + last.ticks;
    // an event the campaign gave no tick sits where the timeline had got to when it came
    for (const event of faults) this.faults.push({ event, tick: event.tick ?? now });
    const t0 = this.steps[0]?.tick ?? 0;
    this.faults = this.faults.filter((f) => f.tick >= t0);
    return true;
  }

  /**
   * Virtual tick to x: steps side by side at their length; a pause between two steps (a recovery)
   * longer than PAUSE_STEPS steps is drawn PAUSE_STEPS steps wide, and labelled with its length.
   */
  private scale(width: number): { x: (tick: number) => number; pauses: { x0: number; x1: number; ticks: number }[] } {
    const pieces: { t0: number; t1: number; w: number; pause: boolean }[] = [];
    let prevEnd: number | null = null;
    for (const s of this.steps) {
      if (prevEnd !== null && s.tick > prevEnd) {
        const gap = s.tick - prevEnd;
        pieces.push({ t0: prevEnd, t1: s.tick, w: Math.min(gap, PAUSE_STEPS * s.ticks), pause: true });
      }
      pieces.push({ t0: s.tick, t1: s.tick + s.ticks, w: s.ticks, pause: false });
      prevEnd = s.tick + s.ticks;
    }
    const total = pieces.reduce((a, p) => a + p.w, 0) || 1;
    const k = width / total;
    const starts: number[] = [];
    let acc = 0;
    for (const p of pieces) {
      starts.push(acc);
      acc += p.w * k;
    }
    const x = (tick: number) => {
      if (pieces.length === 0 || tick <= pieces[0].t0) return 0;
      for (let i = 0; i < pieces.length; i++) {
        const p = pieces[i];
        if (tick <= p.t1) return starts[i] + ((tick - p.t0) / Math.max(1, p.t1 - p.t0)) * p.w * k;
      }
      return width;
    };
    const pauses = pieces.flatMap((p, i) =>
      p.pause ? [{ x0: starts[i], x1: starts[i] + p.w * k, ticks: p.t1 - p.t0 }] : [],
    );
    return { x, pauses };
  }

  draw(layout: ViewLayout): void {
    const c = this.canvas;
    const width = c.clientWidth;
    const rowH = Math.max(3, Math.min(16, Math.floor(160 / layout.racks)));
    const height = rowH * layout.racks + 14;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(width * dpr) || c.height !== Math.round(height * dpr)) {
      c.width = Math.round(width * dpr);
      c.height = Math.round(height * dpr);
      c.style.height = `${height}px`;
    }
    const g = c.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    if (this.steps.length === 0) return;
    const ms = (t: number) => (t / (layout.clockMhz * 1e3)).toFixed(3);
    const { x, pauses } = this.scale(width);
    for (const s of this.steps) this.drawStep(g, layout, s, x, rowH);
    g.font = '10px system-ui';
    for (const p of pauses) {
      g.fillStyle = '#ff9f1a30';
      g.fillRect(p.x0, 0, p.x1 - p.x0, layout.racks * rowH);
      g.fillStyle = '#ff9f1a';
      g.fillText(`pause ${ms(p.ticks)} ms`, p.x0 + 3, 10);
    }
    for (const { event, tick } of this.faults) {
      const fx = Math.min(width - 2, x(tick));
      g.fillStyle = MARK[event.what];
      g.fillRect(fx - 1, 0, 2, height);
      g.fillText(event.what[0].toUpperCase(), fx + 3, height - 3);
    }
    const t0 = this.steps[0].tick;
    const last = this.steps[this.steps.length - 1];
    const t1 = last.tick + last.ticks;
    this.axis.textContent = '';
    for (const text of [`${ms(t0)} ms`, `${this.steps.length} steps, ${ms(t1 - t0)} ms`, `${ms(t1)} ms`]) {
      const span = document.createElement('span');
      span.textContent = text;
      this.axis.append(span);
    }
  }

  /**
   * One kind of step drawn once per layout (and row height) into an offscreen canvas: per-rack
   * activity and the critical path. Each step on the strip is then one drawImage, however many racks
   * and path segments the Plan has.
   */
  private sprite(layout: ViewLayout, kind: 'prefill' | 'decode', rowH: number): HTMLCanvasElement {
    const key = `${layout.planId}:${kind}:${rowH}`;
    const hit = this.sprites.get(key);
    if (hit !== undefined) return hit;
    if (this.sprites.size > 8) this.sprites.clear();
    const profile = layout.steps[kind];
    const c = document.createElement('canvas');
    c.width = SPRITE_WIDTH;
    c.height = layout.racks * rowH;
    const g = c.getContext('2d')!;
    const [r, gr, b] = COLOURS[kind];
    const bw = SPRITE_WIDTH / profile.bins;
    profile.rackActivity.forEach((row, rack) => {
      for (let k = 0; k < row.length; k++) {
        const level = row.charCodeAt(k) - 48;
        if (level === 0) continue;
        g.fillStyle = `rgba(${r},${gr},${b},${(0.15 + level * 0.09).toFixed(2)})`;
        g.fillRect(k * bw, rack * rowH, bw, rowH - 1);
      }
    });
    const scale = SPRITE_WIDTH / Math.max(1, profile.lengthTicks);
    g.strokeStyle = '#ffffffd0';
    g.lineWidth = 3;
    g.beginPath();
    profile.criticalPath.forEach((seg, i) => {
      const y0 = seg.fromRack * rowH + rowH / 2;
      const y1 = seg.toRack * rowH + rowH / 2;
      if (i === 0) g.moveTo(seg.start * scale, y0);
      else g.lineTo(seg.start * scale, y0);
      g.lineTo(seg.end * scale, y1);
    });
    g.stroke();
    this.sprites.set(key, c);
    return c;
  }

  private drawStep(
    g: CanvasRenderingContext2D,
    layout: ViewLayout,
    s: ViewStep,
    x: (t: number) => number,
    rowH: number,
  ) {
    const x0 = x(s.tick);
    const w = x(s.tick + s.ticks) - x0;
    g.drawImage(this.sprite(layout, s.kind, rowH), x0, 0, Math.max(1, w), layout.racks * rowH);
    g.fillStyle = '#0006';
    g.fillRect(x0 + w - 1, 0, 1, layout.racks * rowH);
  }
}
