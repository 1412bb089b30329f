import { CompileError } from '../util/errors.js';
import type { Topology } from './types.js';

/**
 * The physical system a topology describes: chips with their ids, the directed links between them
 * with bandwidth and latency, and minimal routes. Chips are numbered densely
 * (rack-major, then node, then chip) so that per-chip data can live in typed arrays.
 */

export type LinkKind = 'local' | 'global';

export interface Link {
  readonly id: number;
  readonly kind: LinkKind;
  /** Sending chip index. */
  readonly from: number;
  /** Receiving chip index. For `switch` wiring the link is a chip's port to/from the node switch. */
  readonly to: number;
  readonly bytesPerTick: number;
  readonly latencyTicks: number;
  readonly name: string;
}

/** One chip-to-chip traversal: the links it occupies (one, or two through a node switch). */
interface Edge {
  readonly to: number;
  readonly links: readonly number[];
  readonly kind: LinkKind;
}

export interface Route {
  readonly src: number;
  readonly dst: number;
  /** Directed link ids in traversal order. */
  readonly links: readonly number[];
  /** Chip-to-chip traversals (a trip through a node switch counts once). */
  readonly traversals: number;
  /**
   * Hops as ISCA 2022 counts them for a Dragonfly of GroqNodes, where a node acts as one 32-port
   * router: the in-node link at each end plus every cross-node link; forwarding between two chips of
   * an intermediate node is inside that router. With this count the paper's figures hold:
   * 33 nodes (264 chips) in 3 hops, 145 racks (10,440 chips) in 5.
   */
  readonly hops: number;
  readonly latencyTicks: number;
  /** Bandwidth of the slowest link, bytes per tick. */
  readonly bytesPerTick: number;
}

/** Hardware taken out of service: routes never use a failed link nor pass through a failed chip. */
export interface FabricFailures {
  readonly failedChips?: readonly number[];
  /** Chip pairs; [a, b] fails both directions (every a->b and b->a traversal). */
  readonly failedLinks?: readonly (readonly [number, number])[];
}

const NO_FAILED_CHIPS: ReadonlySet<number> = new Set();

export function chipIdOf(rack: number, node: number, chip: number): string {
  return `r${rack}.n${node}.c${chip}`;
}

const CHIP_ID = /^r(\d+)\.n(\d+)\.c(\d+)$/;

export class Fabric {
  readonly topology: Topology;
  readonly chipCount: number;
  readonly nodesPerRack: number;
  readonly chipsPerNode: number;
  readonly links: Link[] = [];
  private readonly adjacency: Edge[][];
  private readonly bfsCache = new Map<number, { dist: Int32Array; parent: Int32Array; edge: Int32Array }>();
  /** Ticks per ns, from the chip clock. */
  readonly ticksPerNs: number;
  readonly failedChips: ReadonlySet<number> = NO_FAILED_CHIPS;
  /** Per directed link id, 1 if failed; null when nothing failed (the common case costs nothing). */
  private readonly failedLinkIds: Uint8Array | null = null;
  /** Failed chip pairs as given, for error messages. */
  private readonly failedPairs: readonly (readonly [number, number])[] = [];

  constructor(topology: Topology, failures: FabricFailures = {}) {
    this.topology = topology;
    this.nodesPerRack = topology.nodes_per_rack;
    this.chipsPerNode = topology.chips_per_node;
    this.chipCount = topology.racks * topology.nodes_per_rack * topology.chips_per_node;
    this.ticksPerNs = topology.chip.clock_mhz / 1000;
    this.adjacency = Array.from({ length: this.chipCount }, () => []);
    this.wireLocal();
    this.wireGlobal();
    const chips = failures.failedChips ?? [];
    const pairs = failures.failedLinks ?? [];
    if (chips.length === 0 && pairs.length === 0) return;
    this.failedChips = new Set(chips);
    this.failedPairs = pairs;
    this.failedLinkIds = this.removeFailed(chips, pairs);
  }

  /** True if the directed link is out of service (its pair failed, or a chip it touches did). */
  isLinkFailed(id: number): boolean {
    return this.failedLinkIds !== null && this.failedLinkIds[id] === 1;
  }

  /**
   * Drops every traversal that starts or ends at a failed chip or joins a failed pair. Link ids stay
   * as wired so plans before and after a failure name links alike. Through a node switch a failed
   * pair drops only that pair's traversals: the ports still serve the chips' other peers.
   */
  private removeFailed(chips: readonly number[], pairs: readonly (readonly [number, number])[]): Uint8Array {
    const check = (c: number) => {
      if (!Number.isInteger(c) || c < 0 || c >= this.chipCount) {
        throw new CompileError('RACKEMU_ERR_COMPILE_OPTION', `failed chip ${c}: not a chip of ${this.topology.name}`, {
          details: { expected: `0..${this.chipCount - 1}`, got: String(c) },
        });
      }
    };
    const failedLinks = new Uint8Array(this.links.length);
    for (const c of chips) check(c);
    for (const l of this.links) if (this.failedChips.has(l.from) || this.failedChips.has(l.to)) failedLinks[l.id] = 1;
    const cut = new Set<number>(); // a * chipCount + b, both directions
    for (const [a, b] of pairs) {
      check(a);
      check(b);
      if (!this.adjacency[a].some((e) => e.to === b)) {
        throw new CompileError(
          'RACKEMU_ERR_COMPILE_OPTION',
          `failed link ${this.chipId(a)}-${this.chipId(b)}: no link joins these chips`,
          { details: { got: `${this.chipId(a)}-${this.chipId(b)}` } },
        );
      }
      cut.add(a * this.chipCount + b);
      cut.add(b * this.chipCount + a);
    }
    for (let u = 0; u < this.chipCount; u++) {
      this.adjacency[u] = this.adjacency[u].filter((e) => {
        if (this.failedChips.has(u) || this.failedChips.has(e.to)) return false;
        if (!cut.has(u * this.chipCount + e.to)) return true;
        // a direct link carries only this pair's traffic: it is failed too
        if (e.links.length === 1) failedLinks[e.links[0]] = 1;
        return false;
      });
    }
    return failedLinks;
  }

  rackOf(chip: number): number {
    return Math.floor(chip / (this.nodesPerRack * this.chipsPerNode));
  }
  /** Node index within its rack. */
  nodeOf(chip: number): number {
    return Math.floor(chip / this.chipsPerNode) % this.nodesPerRack;
  }
  /** Global node index (rack-major). */
  globalNodeOf(chip: number): number {
    return Math.floor(chip / this.chipsPerNode);
  }
  chipInNode(chip: number): number {
    return chip % this.chipsPerNode;
  }
  chipId(chip: number): string {
    return chipIdOf(this.rackOf(chip), this.nodeOf(chip), this.chipInNode(chip));
  }
  hostId(chip: number): string {
    return `r${this.rackOf(chip)}.n${this.nodeOf(chip)}`;
  }
  chipIndex(id: string): number {
    const m = CHIP_ID.exec(id);
    if (!m) return -1;
    const [r, n, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (r >= this.topology.racks || n >= this.nodesPerRack || c >= this.chipsPerNode) return -1;
    return (r * this.nodesPerRack + n) * this.chipsPerNode + c;
  }
  /** Spare nodes are the last `spare_nodes_per_rack` nodes of each rack. */
  isSpare(chip: number): boolean {
    return this.nodeOf(chip) >= this.nodesPerRack - this.topology.spare_nodes_per_rack;
  }

  private addLink(kind: LinkKind, from: number, to: number, name: string): number {
    const cls = kind === 'local' ? this.topology.links.local : this.topology.links.global;
    // lanes x Gb/s -> bytes per ns -> bytes per tick
    const bytesPerNs = (cls.lanes * cls.lane_gbps) / 8;
    const link: Link = {
      id: this.links.length,
      kind,
      from,
      to,
      bytesPerTick: bytesPerNs / this.ticksPerNs,
      latencyTicks: Math.ceil(cls.hop_latency_ns * this.ticksPerNs),
      name,
    };
    this.links.push(link);
    return link.id;
  }

  private wireLocal(): void {
    const t = this.topology;
    const C = t.chips_per_node;
    if (C === 1) return;
    const nodes = t.racks * t.nodes_per_rack;
    for (let node = 0; node < nodes; node++) {
      const base = node * C;
      if (t.links.local.wiring === 'full_mesh') {
        for (let a = 0; a < C; a++) {
          for (let b = 0; b < C; b++) {
            if (a === b) continue;
            const id = this.addLink('local', base + a, base + b, `${this.chipId(base + a)}->${this.chipId(base + b)}`);
            this.adjacency[base + a].push({ to: base + b, links: [id], kind: 'local' });
          }
        }
      } else {
        // switch: each chip's links are bundled into one port up to and one port down from the switch.
        const up: number[] = [];
        const down: number[] = [];
        for (let a = 0; a < C; a++) {
          up.push(this.addSwitchPort(base + a, 'up'));
          down.push(this.addSwitchPort(base + a, 'down'));
        }
        for (let a = 0; a < C; a++) {
          for (let b = 0; b < C; b++) {
            if (a !== b) this.adjacency[base + a].push({ to: base + b, links: [up[a], down[b]], kind: 'local' });
          }
        }
      }
    }
  }

  private addSwitchPort(chip: number, dir: 'up' | 'down'): number {
    const cls = this.topology.links.local;
    const bytesPerNs = (cls.per_chip * cls.lanes * cls.lane_gbps) / 8;
    const link: Link = {
      id: this.links.length,
      kind: 'local',
      from: chip,
      to: chip,
      bytesPerTick: bytesPerNs / this.ticksPerNs,
      // A trip through the switch is one traversal: its latency is charged on the up port only.
      latencyTicks: dir === 'up' ? Math.ceil(cls.hop_latency_ns * this.ticksPerNs) : 0,
      name: `${this.chipId(chip)}:${dir}`,
    };
    this.links.push(link);
    return link.id;
  }

  private connectGlobal(a: number, b: number): void {
    const ab = this.addLink('global', a, b, `${this.chipId(a)}=>${this.chipId(b)}`);
    const ba = this.addLink('global', b, a, `${this.chipId(b)}=>${this.chipId(a)}`);
    this.adjacency[a].push({ to: b, links: [ab], kind: 'global' });
    this.adjacency[b].push({ to: a, links: [ba], kind: 'global' });
  }

  /**
   * Dragonfly with racks as groups. A node's global ports are numbered q = k * chips + c (link k of
   * chip c), so consecutive ports sit on different chips. Ports 0..N-2 join the node to the other
   * N-1 nodes of its rack (one cable per pair; a single rack repeats the pattern to use all ports);
   * the remaining ports of all the rack's nodes, interleaved across nodes, go round-robin to the
   * other racks, the same number of cables to each.
   */
  private wireGlobal(): void {
    const t = this.topology;
    if (t.links.global.wiring !== 'dragonfly' || t.links.global.per_chip === 0) return;
    const C = t.chips_per_node;
    const N = t.nodes_per_rack;
    const ports = C * t.links.global.per_chip;
    const chipOfPort = (rack: number, node: number, q: number): number => (rack * N + node) * C + (q % C);
    const intraRounds = t.racks === 1 && N > 1 ? Math.floor(ports / (N - 1)) : 1;
    const nextPort = new Int32Array(t.racks * N); // next free port per node
    for (let rack = 0; rack < t.racks; rack++) {
      for (let round = 0; round < intraRounds; round++) {
        for (let n = 0; n < N; n++) {
          for (let m = n + 1; m < N; m++) {
            // port index of m among n's peers and of n among m's peers, offset by the round
            const qn = round * (N - 1) + (m - 1);
            const qm = round * (N - 1) + n;
            this.connectGlobal(chipOfPort(rack, n, qn), chipOfPort(rack, m, qm));
          }
        }
      }
      for (let n = 0; n < N; n++) nextPort[rack * N + n] = intraRounds * (N - 1);
    }
    if (t.racks === 1) return;
    // Free ports of each rack, interleaved across its nodes.
    const free: number[][] = [];
    for (let rack = 0; rack < t.racks; rack++) {
      const list: number[] = [];
      for (let q = N - 1; q < ports; q++) for (let n = 0; n < N; n++) list.push(chipOfPort(rack, n, q));
      free.push(list);
    }
    const perRack = free[0].length;
    const rounds = Math.floor(perRack / (t.racks - 1));
    const cursor = new Int32Array(t.racks);
    for (let round = 0; round < rounds; round++) {
      for (let a = 0; a < t.racks; a++) {
        for (let b = a + 1; b < t.racks; b++) {
          this.connectGlobal(free[a][cursor[a]++], free[b][cursor[b]++]);
        }
      }
    }
    // Ports left over after the even rounds: pair them greedily, farthest-apart racks first, so
    // as few ports as possible stay dark.
    for (let d = t.racks - 1; d >= 1; d--) {
      for (let a = 0; a + d < t.racks; a++) {
        const b = a + d;
        if (cursor[a] < perRack && cursor[b] < perRack) this.connectGlobal(free[a][cursor[a]++], free[b][cursor[b]++]);
      }
    }
  }

  /**
   * BFS tree from a source towards one destination rack (deterministic: neighbours in wiring order).
   * Only Dragonfly-minimal paths are considered: they stay inside the source and destination racks
   * and cross between them once (a detour through a third rack is the non-minimal, Valiant kind of
   * route). Among paths with the fewest traversals, fewer cross-node links win.
   */
  private bfs(src: number, dstRack: number): { dist: Int32Array; parent: Int32Array; edge: Int32Array } {
    const key = src * this.topology.racks + dstRack;
    let cached = this.bfsCache.get(key);
    if (cached) return cached;
    const srcRack = this.rackOf(src);
    const dist = new Int32Array(this.chipCount).fill(-1);
    const globals = new Int32Array(this.chipCount);
    const parent = new Int32Array(this.chipCount).fill(-1);
    const edge = new Int32Array(this.chipCount).fill(-1); // index into adjacency[parent]
    const queue: number[] = [src];
    dist[src] = 0;
    for (let head = 0; head < queue.length; head++) {
      const u = queue[head];
      const ru = this.rackOf(u);
      const edges = this.adjacency[u];
      for (let e = 0; e < edges.length; e++) {
        const v = edges[e].to;
        const rv = this.rackOf(v);
        if (rv !== ru && !(ru === srcRack && rv === dstRack)) continue;
        const g = globals[u] + (edges[e].kind === 'global' ? 1 : 0);
        if (dist[v] < 0) {
          dist[v] = dist[u] + 1;
          globals[v] = g;
          parent[v] = u;
          edge[v] = e;
          queue.push(v);
        } else if (dist[v] === dist[u] + 1 && g < globals[v]) {
          globals[v] = g;
          parent[v] = u;
          edge[v] = e;
        }
      }
    }
    cached = { dist, parent, edge };
    if (this.bfsCache.size > 4096) this.bfsCache.clear();
    this.bfsCache.set(key, cached);
    return cached;
  }

  /**
   * A minimal route: Dragonfly-minimal (source rack, at most one rack-to-rack link, destination rack)
   * with the fewest chip-to-chip traversals. Throws RACKEMU_ERR_NO_ROUTE if there is none.
   */
  route(src: number, dst: number): Route {
    if (src === dst) return { src, dst, links: [], traversals: 0, hops: 0, latencyTicks: 0, bytesPerTick: Infinity };
    const { dist, parent, edge } = this.bfs(src, this.rackOf(dst));
    if (dist[dst] < 0) throw this.noRoute(src, dst);
    const edges: Edge[] = [];
    for (let v = dst; v !== src;) {
      const u = parent[v];
      edges.push(this.adjacency[u][edge[v]]);
      v = u;
    }
    edges.reverse();
    const links = edges.flatMap((e) => e.links);
    let hops = 0;
    edges.forEach((e, i) => {
      if (e.kind === 'global' || i === 0 || i === edges.length - 1) hops++;
    });
    let latencyTicks = 0;
    let bytesPerTick = Infinity;
    for (const id of links) {
      latencyTicks += this.links[id].latencyTicks;
      bytesPerTick = Math.min(bytesPerTick, this.links[id].bytesPerTick);
    }
    return { src, dst, links, traversals: edges.length, hops, latencyTicks, bytesPerTick };
  }

  private noRoute(src: number, dst: number): CompileError {
    const ids = (cs: Iterable<number>) => [...cs].map((c) => this.chipId(c));
    const chips = ids(this.failedChips);
    const links = this.failedPairs.map(([a, b]) => `${this.chipId(a)}-${this.chipId(b)}`);
    const failed = [chips.length ? `chips ${chips.join(', ')}` : '', links.length ? `links ${links.join(', ')}` : ''];
    const deadEnds = ids([src, dst].filter((c) => this.failedChips.has(c)));
    // only Dragonfly-minimal routes are tried, so a failure can cut off chips a detour would still join
    const why = deadEnds.length
      ? `: ${deadEnds.join(' and ')} failed`
      : chips.length + links.length
        ? `: the failed ${failed.filter(Boolean).join(' and ')} cut them off (no minimal route avoids them)`
        : '';
    return new CompileError('RACKEMU_ERR_NO_ROUTE', `no route from ${this.chipId(src)} to ${this.chipId(dst)}${why}`, {
      details: { src: this.chipId(src), dst: this.chipId(dst), failed_chips: chips, failed_links: links },
    });
  }

  /** Neighbouring chips of a chip with the links to each (for tests and the rack view). */
  neighbours(chip: number): { to: number; links: readonly number[]; kind: LinkKind }[] {
    return this.adjacency[chip].map((e) => ({ to: e.to, links: e.links, kind: e.kind }));
  }
}
