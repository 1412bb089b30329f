import type { ViewLayout } from '../protocol.js';

/** Busy levels kept per chip for its tooltip's sparkline. */
export const HISTORY = 40;

/**
 * The racks as DOM: a block per rack, a row per node, a cell per chip carrying `data-chip` (its id)
 * and `data-i` (its index). Updates touch only cells whose state or busy level changed; in lockstep
 * steady state that is none, so an update costs a pass over two short strings.
 */
export class Grid {
  readonly cells: HTMLElement[] = [];
  private states = '';
  private busy = '';
  /** Busy levels, HISTORY per chip, oldest first after `filled` updates (a ring at `head`). */
  readonly history: Uint8Array;
  private head = 0;

  constructor(
    private readonly root: HTMLElement,
    readonly layout: ViewLayout,
  ) {
    this.history = new Uint8Array(layout.chips.length * HISTORY);
    root.replaceChildren();
    const { racks, nodesPerRack, chipsPerNode, chips } = layout;
    const many = chips.length > 2000;
    root.style.setProperty('--cell', many ? '5px' : chips.length > 1000 ? '9px' : '13px');
    root.style.setProperty('--gap', many ? '1px' : '2px');
    const frag = document.createDocumentFragment();
    for (let r = 0; r < racks; r++) {
      const rack = document.createElement('div');
      rack.className = 'rack';
      const label = document.createElement('div');
      label.className = 'label';
      label.textContent = `r${r}`;
      rack.append(label);
      for (let n = 0; n < nodesPerRack; n++) {
        const node = document.createElement('div');
        node.className = 'node';
        const first = (r * nodesPerRack + n) * chipsPerNode;
        if (chips[first]?.role === 'spare' && chips[first - chipsPerNode]?.role !== 'spare')
          node.classList.add('spare-node');
        for (let c = 0; c < chipsPerNode; c++) {
          const i = first + c;
          const chip = chips[i];
          const cell = document.createElement('div');
          cell.className = 'chip';
          cell.dataset.chip = chip.id;
          cell.dataset.i = String(i);
          cell.setAttribute('role', 'gridcell');
          cell.setAttribute('aria-label', chip.id);
          cell.style.setProperty('--sram', String(chip.sramUsedBytes / layout.sramCapacityBytes));
          if (chip.retired) cell.classList.add('retired');
          node.append(cell);
          this.cells.push(cell);
        }
        rack.append(node);
      }
      frag.append(rack);
    }
    root.append(frag);
  }

  /** Applies one update's per-chip strings; returns how many cells changed. */
  apply(states: string, busy: string): number {
    let changed = 0;
    const cells = this.cells;
    const hist = this.history;
    const h = this.head;
    for (let i = 0; i < cells.length; i++) {
      const s = states.charCodeAt(i);
      if (s !== this.states.charCodeAt(i)) {
        const retired = this.layout.chips[i].retired ? ' retired' : '';
        cells[i].className = `chip ${states[i]}${retired}`;
        changed++;
      }
      const b = busy.charCodeAt(i);
      if (b !== this.busy.charCodeAt(i)) {
        cells[i].style.setProperty('--lvl', busy[i]);
        changed++;
      }
      hist[i * HISTORY + h] = b - 48;
    }
    this.head = (h + 1) % HISTORY;
    this.states = states;
    this.busy = busy;
    return changed;
  }

  stateOf(i: number): string {
    return this.states[i] ?? 'i';
  }

  /** The chip's busy levels, oldest first. */
  historyOf(i: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < HISTORY; k++) out.push(this.history[i * HISTORY + ((this.head + k) % HISTORY)]);
    return out;
  }
}
