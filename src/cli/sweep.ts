import { Option, type Command } from 'commander';
import { WEIGHT_DTYPES, type WeightDtype } from '../model/config.js';
import { loadModel } from '../model/load.js';
import { frontierSvg, renderPng, sweep, type SweepResult } from '../sweep/index.js';
import { loadTopology, parseSetArg } from '../topology/load.js';
import { UsageError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { integerFlag } from './plan-flags.js';

interface SweepFlags {
  topology: string[];
  model: string;
  batch: number[];
  dtype: WeightDtype[];
  microBatches: number[];
  context: number;
  promptTokens?: number;
  set: string[];
  json?: boolean;
  svg?: string;
  png?: string;
}

/** Batch sizes swept by default: batch 1 (latency) up to 64 sequences a step. */
export const DEFAULT_SWEEP_BATCHES = [1, 2, 4, 8, 16, 32, 64];
/** KV-cache positions per sequence in a sweep: a chat-length context (the model maximum rarely fits a batch). */
export const DEFAULT_SWEEP_CONTEXT = 4096;

function listFlag<T>(flag: string, item: (v: string) => T) {
  return (v: string): T[] => {
    const parts = v.split(',').map((s) => s.trim());
    if (parts.some((p) => p === '')) {
      throw new UsageError('RACKEMU_ERR_USAGE', `${flag}: expected a comma-separated list, got "${v}"`, {
        details: { path: flag, expected: 'a comma-separated list', got: v },
      });
    }
    return parts.map(item);
  };
}

function dtypeItem(v: string): WeightDtype {
  if (!(WEIGHT_DTYPES as readonly string[]).includes(v)) {
    throw new UsageError('RACKEMU_ERR_USAGE', `--dtype: expected one of ${WEIGHT_DTYPES.join(', ')}, got "${v}"`, {
      details: { path: '--dtype', expected: WEIGHT_DTYPES.join(' | '), got: v },
    });
  }
  return v as WeightDtype;
}

export function sweepCommand(program: Command, out: (s: string) => void): void {
  program
    .command('sweep')
    .description(
      'compile a model onto one or more topologies over batch sizes and dtypes: tokens/s per user and in total, TTFT, power and cost per million tokens',
    )
    .requiredOption(
      '--topology <file>',
      'topology YAML file (repeat for several systems)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .requiredOption('--model <name|folder>', 'built-in model or a Hugging Face folder')
    .option(
      '--batch <list>',
      `batch sizes, comma-separated (default ${DEFAULT_SWEEP_BATCHES.join(',')})`,
      listFlag('--batch', integerFlag('--batch')),
      DEFAULT_SWEEP_BATCHES,
    )
    .option(
      '--micro-batches <list>',
      'micro-batches per step pipelined through the layer groups, comma-separated (default 1)',
      listFlag('--micro-batches', integerFlag('--micro-batches')),
      [1],
    )
    .addOption(
      new Option('--dtype <list>', 'weight dtypes, comma-separated (default bf16)')
        .argParser(listFlag('--dtype', dtypeItem))
        .default(['bf16']),
    )
    .option(
      '--context <n>',
      `KV-cache positions per sequence (default ${DEFAULT_SWEEP_CONTEXT})`,
      integerFlag('--context'),
      DEFAULT_SWEEP_CONTEXT,
    )
    .option(
      '--prompt-tokens <n>',
      'prompt length the TTFT prediction assumes (default 128)',
      integerFlag('--prompt-tokens'),
    )
    .option(
      '--set <key.path=value>',
      'override a key of every topology (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--json', 'print one JSON object ({ model, context, points, skipped, wall_s })')
    .option('--svg <file>', 'write the throughput-latency chart as SVG')
    .option('--png <file>', 'write the chart as PNG (rendered by resvg)')
    .action((f: SweepFlags) => {
      const sets = f.set.map(parseSetArg);
      const topologies = f.topology.map((t) => loadTopology(t, sets));
      // one dtype per compile: the model's own config does not depend on the weight dtype
      const { config } = loadModel(f.model, { dtype: f.dtype[0], withWeights: false });
      const result = sweep(topologies, config, {
        batches: [...new Set(f.batch)].sort((a, b) => a - b),
        microBatches: [...new Set(f.microBatches)].sort((a, b) => a - b),
        dtypes: [...new Set(f.dtype)],
        context: f.context,
        promptTokens: f.promptTokens,
      });
      const title = `${result.model}, context ${result.context}: tokens/s per user vs system throughput`;
      const svg = f.svg || f.png ? frontierSvg(result.points, title) : null;
      if (f.svg) writeFileAtomic(f.svg, svg!);
      if (f.png) writeFileAtomic(f.png, renderPng(svg!));
      out(f.json ? JSON.stringify(result) + '\n' : formatSweep(result));
    });
}

function formatSweep(r: SweepResult): string {
  const rows = [
    ['topology', 'dtype', 'batch', 'micro', 'tok/s/user', 'tok/s total', 'TTFT ms', 'power kW', '$/M tokens'],
    ...r.points.map((p) => [
      p.topology,
      p.dtype,
      String(p.batch),
      String(p.micro_batches),
      p.tokens_per_s_per_user.toFixed(1),
      p.tokens_per_s_total.toFixed(0),
      p.ttft_ms.toFixed(2),
      (p.power_w / 1000).toFixed(1),
      p.cost_per_million_tokens_usd.toFixed(3),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const lines = rows.map((row) => row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  for (const s of r.skipped)
    lines.push(`skipped   ${s.topology} ${s.dtype} batch ${s.batch} x ${s.micro_batches}: ${s.reason}`);
  lines.push(`${r.model}, context ${r.context}; swept in ${r.wall_s.toFixed(1)} s`);
  return lines.join('\n') + '\n';
}
