import { describe, expect, it } from 'vitest';
import { Fabric } from '../src/topology/fabric.js';
import { loadTopology } from '../src/topology/load.js';
import { topo } from './helpers/cli.js';

/**
 * Independent BFS over the link list (not the fabric's adjacency): fewest traversals among
 * Dragonfly-minimal paths, which stay in the two racks and cross from source rack to destination rack once.
 */
function bfsDistances(f: Fabric, src: number, dstRack: number): Int32Array {
  const out: number[][] = Array.from({ length: f.chipCount }, () => []);
  const sr = f.rackOf(src);
  for (const l of f.links) {
    const [a, b] = [f.rackOf(l.from), f.rackOf(l.to)];
    if (l.from !== l.to && (a === b ? a === sr || a === dstRack : a === sr && b === dstRack)) out[l.from].push(l.to);
  }
  const dist = new Int32Array(f.chipCount).fill(-1);
  const q = [src];
  dist[src] = 0;
  for (let h = 0; h < q.length; h++) {
    for (const v of out[q[h]]) {
      if (dist[v] >= 0) continue;
      dist[v] = dist[q[h]] + 1;
      q.push(v);
    }
  }
  return dist;
}

function rng(seed: number) {
  return () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
}

describe('fabric', () => {
  it('fabric - groq-576 chips have 7 local and at most 4 global links, racks evenly joined', () => {
    const f = new Fabric(loadTopology(topo('groq-576')));
    expect(f.chipCount).toBe(576);
    let dark = 0;
    const perRackPair = new Map<string, number>();
    for (let c = 0; c < f.chipCount; c++) {
      const n = f.neighbours(c);
      expect(n.filter((e) => e.kind === 'local').length).toBe(7);
      const g = n.filter((e) => e.kind === 'global');
      expect(g.length).toBeLessThanOrEqual(4);
      dark += 4 - g.length;
      for (const e of g) {
        const [a, b] = [f.rackOf(c), f.rackOf(e.to)];
        if (a < b) perRackPair.set(`${a}-${b}`, (perRackPair.get(`${a}-${b}`) ?? 0) + 1);
      }
    }
    expect(dark).toBeLessThanOrEqual(8); // a few ports may stay dark when the racks' free ports do not pair up evenly
    expect(perRackPair.size).toBe(28);
    for (const n of perRackPair.values()) expect(n).toBeGreaterThanOrEqual(30);
    expect(f.chipId(0)).toBe('r0.n0.c0');
    expect(f.chipId(575)).toBe('r7.n8.c7');
    expect(f.chipIndex('r2.n4.c7')).toBe((2 * 9 + 4) * 8 + 7);
    expect(f.chipIndex('r9.n0.c0')).toBe(-1);
    expect([...Array(576).keys()].filter((c) => f.isSpare(c)).length).toBe(64);
  });

  it('fabric - routes inside a rack take at most 3 hops, and 1 inside a node', () => {
    const f = new Fabric(loadTopology(topo('groq-72')));
    for (let a = 0; a < 72; a += 5) {
      for (let b = 0; b < 72; b += 3) {
        if (a === b) continue;
        const r = f.route(a, b);
        expect(r.hops).toBeLessThanOrEqual(f.globalNodeOf(a) === f.globalNodeOf(b) ? 1 : 3);
      }
    }
  });

  it('fabric - groq-10440 routes between sampled chips are minimal, connected and at most 5 hops', () => {
    const t = loadTopology(topo('groq-10440'));
    const f = new Fabric(t);
    expect(f.chipCount).toBe(10440);
    const rand = rng(7);
    let maxHops = 0;
    for (let i = 0; i < 30; i++) {
      const a = Math.floor(rand() * f.chipCount);
      for (let j = 0; j < 20; j++) {
        const b = Math.floor(rand() * f.chipCount);
        const dist = bfsDistances(f, a, f.rackOf(b));
        if (a === b) continue;
        const r = f.route(a, b);
        let at = a;
        for (const id of r.links) {
          expect(f.links[id].from).toBe(at);
          at = f.links[id].to;
        }
        expect(at).toBe(b);
        expect(r.traversals).toBe(dist[b]);
        expect(r.hops).toBeLessThanOrEqual(5);
        maxHops = Math.max(maxHops, r.hops);
      }
    }
    expect(maxHops).toBeGreaterThanOrEqual(4); // the sample does cross racks
  });

  it('fabric - switch wiring routes every GPU pair through the switch in one traversal', () => {
    const f = new Fabric(loadTopology(topo('h100-8x')));
    const r = f.route(0, 7);
    expect(r.traversals).toBe(1);
    expect(r.links.map((id) => f.links[id].name)).toEqual(['r0.n0.c0:up', 'r0.n0.c7:down']);
    // 18 links x 2 lanes x 100 Gb/s = 450 GB/s per direction
    expect(r.bytesPerTick * f.ticksPerNs).toBeCloseTo(450, 6);
  });
});
