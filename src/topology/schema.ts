/**
 * JSON Schema of a topology file: the single place where keys, types and ranges are defined.
 * Every object is closed (additionalProperties: false) so a misspelt key is an error, not a silent default.
 */

type JsonSchema = Record<string, unknown>;

const count = (description: string, minimum = 1): JsonSchema => ({ type: 'integer', minimum, description });
const positive = (description: string): JsonSchema => ({ type: 'number', exclusiveMinimum: 0, description });
const nonNegative = (description: string): JsonSchema => ({ type: 'number', minimum: 0, description });
const closed = (properties: Record<string, JsonSchema>, optional: string[] = []): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  properties,
});

const linkClass = (what: string): JsonSchema =>
  closed({
    per_chip: count(`${what} links per chip`, 0),
    lanes: count('lanes per link'),
    lane_gbps: positive('line rate of one lane, one direction, Gb/s'),
    hop_latency_ns: nonNegative('latency of one traversal, ns'),
    wiring: { enum: ['full_mesh', 'switch', 'dragonfly', 'none'], description: 'how these links are wired' },
  });

export const TOPOLOGY_SCHEMA: JsonSchema = closed(
  {
    name: { type: 'string', minLength: 1, description: 'topology name' },
    description: { type: 'string' },
    racks: count('racks'),
    nodes_per_rack: count('nodes (servers) per rack, spares included'),
    spare_nodes_per_rack: count('spare nodes per rack, holding nothing until failover', 0),
    chips_per_node: count('chips per node'),
    cpus_per_node: count('host CPUs per node'),
    chip: closed(
      {
        kind: { enum: ['lpu', 'gpu'] },
        clock_mhz: positive('chip clock, MHz (one tick = one cycle)'),
        sram_mib: positive('on-chip SRAM per chip, MiB'),
        sram_bandwidth_tbps: positive('SRAM bandwidth, TB/s'),
        hbm_gib: nonNegative('external memory per chip, GiB (0 = none)'),
        hbm_bandwidth_tbps: nonNegative('external memory bandwidth, TB/s'),
        peak_tflops: closed({
          bf16: positive('bf16 dense peak, TFLOPS'),
          fp16: positive('fp16 dense peak, TFLOPS'),
          int8: positive('int8 dense peak, TOPS'),
          fp8: positive('fp8 dense peak, TFLOPS'),
        }),
        weight_load_bytes_per_tick: nonNegative(
          'rate weights stream into the matrix units, bytes/tick (0 = memory bound)',
        ),
        op_overhead_ns: nonNegative('fixed cost per issued kernel (launch and boundary), ns'),
        memory_efficiency: {
          type: 'number',
          exclusiveMinimum: 0,
          maximum: 1,
          description: 'fraction of the memory bandwidth that memory-bound decode kernels reach (default 1)',
        },
        kernels_per_op: closed(
          {
            embed: count('kernels an embed op launches', 0),
            sum: count('kernels a sum op launches', 0),
            attention: count('kernels an attention op launches', 0),
            ffn: count('kernels an FFN/MoE op launches', 0),
            lm_head: count('kernels an lm_head op launches', 0),
            sample: count('kernels a sample op launches', 0),
          },
          ['embed', 'sum', 'attention', 'ffn', 'lm_head', 'sample'],
        ),
        power_w: nonNegative('power of a busy chip, W'),
        idle_power_w: nonNegative('power of an idle or spare chip, W'),
      },
      ['memory_efficiency', 'kernels_per_op'],
    ),
    links: closed({ local: linkClass('in-node'), global: linkClass('cross-node') }),
    sync: closed({
      epoch_ticks: count('ticks between global-time counter exchanges'),
      step_overhead_ticks: count('synchronisation cost per schedule step, ticks', 0),
    }),
    host: closed({
      ram_gib: positive('host RAM per node, GiB'),
      pcie_gbps: positive('PCIe bandwidth per chip, GB/s'),
      pcie_root_gbps: positive(
        "host-side PCIe bandwidth the node's chips share (CPU root ports or PCIe-switch uplinks), GB/s",
      ),
      power_w: nonNegative('host power per node (CPUs, RAM, fans, NICs), W'),
      health_poll_interval_s: positive('seconds between two health polls of one chip by its host'),
      cpu_us: closed({
        stage_per_step: nonNegative("host CPU time to write one step's input token ids into the chips, us"),
        stage_per_row: nonNegative('host CPU time per row (token id) staged, us'),
        readback_per_step: nonNegative("host CPU time to read one step's sampled ids back from the chips, us"),
        readback_per_row: nonNegative('host CPU time per row (sampled id) read back, us'),
        tokenise_per_token: nonNegative('host CPU time to tokenise one prompt token, us'),
        detokenise_per_token: nonNegative('host CPU time to detokenise one generated token, us'),
        health_poll_per_chip: nonNegative('host CPU time of one health poll of one chip, us'),
      }),
    }),
    prices: closed(
      {
        node_usd: nonNegative('price of one node with its chips, USD'),
        electricity_usd_per_kwh: nonNegative('electricity price, USD per kWh'),
        amortisation_years: positive('years over which hardware is amortised'),
        utilisation: {
          type: 'number',
          exclusiveMinimum: 0,
          maximum: 1,
          description: 'fraction of the hours the system serves at its predicted rate (default 1)',
        },
      },
      ['utilisation'],
    ),
    calibrated: {
      type: 'array',
      items: closed({ key: { type: 'string' }, figure: { type: 'string' }, method: { type: 'string' } }),
    },
  },
  ['description', 'calibrated'],
);

/**
 * Values of the optional chip keys when a topology leaves them out: a statically scheduled chip issues
 * each op of the Plan as one unit and streams weights at the rate the topology states.
 */
export const CHIP_DEFAULTS = {
  memory_efficiency: 1,
  kernels_per_op: { embed: 1, sum: 1, attention: 1, ffn: 1, lm_head: 1, sample: 1 },
} as const;

/** Cost per token assumes the system serves at its predicted rate around the clock, unless a topology says less. */
export const PRICE_DEFAULTS = { utilisation: 1 } as const;

/** The schema node at a key path, or undefined when the path is not defined (for --set validation). */
export function schemaAt(path: readonly string[]): JsonSchema | undefined {
  let node: JsonSchema | undefined = TOPOLOGY_SCHEMA;
  for (const key of path) {
    const props = node?.properties as Record<string, JsonSchema> | undefined;
    node = props?.[key];
    if (!node) return undefined;
  }
  return node;
}
