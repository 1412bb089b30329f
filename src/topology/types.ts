/**
 * A topology as written in topologies/*.yaml (keys kept in the file's snake_case so that `--set`
 * paths, error messages and code all use one spelling). See schema.ts for the meaning and range
 * of each key, and the shipped YAML files for where each default comes from.
 */

export type DtypeRates = { bf16: number; fp16: number; int8: number; fp8: number };

export interface LinkClass {
  /** Links of this class on each chip. */
  per_chip: number;
  lanes: number;
  /** Line rate of one lane, one direction, Gb/s. */
  lane_gbps: number;
  /** Latency of one traversal of this link class (SerDes, wire, forwarding), ns. */
  hop_latency_ns: number;
  /**
   * local: `full_mesh` (every chip of a node has a direct link to every other) or `switch` (every
   * chip's links go to a node switch, NVSwitch-style). global: `dragonfly` (racks are groups; nodes of
   * a rack fully connected, racks connected all-to-all) or `none`.
   */
  wiring: 'full_mesh' | 'switch' | 'dragonfly' | 'none';
}

export interface CalibratedParam {
  /** Key path of the parameter, e.g. chip.weight_load_bytes_per_tick. */
  key: string;
  /** The published figure it was fitted to, with its source. */
  figure: string;
  /** How it was fitted (a command that reproduces it). */
  method: string;
}

/** CPU time a host agent spends per unit of work, microseconds of one CPU (see schema.ts). */
export interface HostCpuCostsUs {
  /** Writing one step's input token ids into the chip that holds them: fixed part per step... */
  stage_per_step: number;
  /** ... and per row (one token id). */
  stage_per_row: number;
  /** Reading one step's sampled ids back from the sampler chip: per step... */
  readback_per_step: number;
  /** ... and per row. */
  readback_per_row: number;
  /** Tokenising one prompt token (text to id). */
  tokenise_per_token: number;
  /** Detokenising one generated token (id to text, streamed one at a time). */
  detokenise_per_token: number;
  /** One health poll of one chip. */
  health_poll_per_chip: number;
}

export interface Topology {
  name: string;
  description?: string;
  racks: number;
  nodes_per_rack: number;
  spare_nodes_per_rack: number;
  chips_per_node: number;
  cpus_per_node: number;
  chip: {
    kind: 'lpu' | 'gpu';
    clock_mhz: number;
    /** On-chip SRAM per chip, MiB (fractions allowed, for shrunk-SRAM experiments). */
    sram_mib: number;
    sram_bandwidth_tbps: number;
    /** External memory per chip, GiB; 0 for SRAM-only chips. Weights live in HBM when it exists. */
    hbm_gib: number;
    hbm_bandwidth_tbps: number;
    /** Dense peak per dtype, TFLOPS (TOPS for int8). */
    peak_tflops: DtypeRates;
    /**
     * Rate at which weights stream into the matrix units, bytes per tick; 0 means "as fast as the
     * memory holding them" (memory-bandwidth bound, the GPU case).
     */
    weight_load_bytes_per_tick: number;
    /** Fixed cost of issuing one kernel (launch and boundary on a GPU; ~0 on a statically scheduled LPU), ns. */
    op_overhead_ns: number;
    /**
     * Fraction of the memory bandwidth (HBM, or SRAM) that memory-bound decode kernels reach: weights and
     * the KV cache stream at bandwidth x this (default 1).
     */
    memory_efficiency: number;
    /** Kernels one op of the Plan launches, each paying op_overhead_ns (default 1 each). */
    kernels_per_op: Readonly<Record<'embed' | 'sum' | 'attention' | 'ffn' | 'lm_head' | 'sample', number>>;
    power_w: number;
    idle_power_w: number;
  };
  links: { local: LinkClass; global: LinkClass };
  sync: {
    /** Ticks between the chips' global-time counter exchanges. */
    epoch_ticks: number;
    /** Fixed synchronisation cost per schedule step (start-of-step alignment), ticks. */
    step_overhead_ticks: number;
  };
  host: {
    /** RAM per node server, GiB. */
    ram_gib: number;
    /** PCIe bandwidth of one chip's own link to the host, GB/s (1e9 bytes/s), one direction. */
    pcie_gbps: number;
    /**
     * Host-side PCIe bandwidth the node's chips share, GB/s: the CPUs' root ports, or the uplinks of
     * the PCIe switches the chips sit behind. Chips loading at once split it evenly, each capped at
     * `pcie_gbps`; chips_per_node x pcie_gbps or more means the chips never contend.
     */
    pcie_root_gbps: number;
    power_w: number;
    /** Seconds between two health polls (link faults, temperatures) of one chip by its host agent. */
    health_poll_interval_s: number;
    /** CPU time of each kind of host work, microseconds of one CPU. */
    cpu_us: HostCpuCostsUs;
  };
  prices: {
    node_usd: number;
    electricity_usd_per_kwh: number;
    amortisation_years: number;
    /** Fraction of the hours the system serves at its predicted rate (default 1): cost per token divides by it. */
    utilisation: number;
  };
  calibrated?: CalibratedParam[];
}
