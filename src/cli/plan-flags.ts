import { Option, type Command } from 'commander';
import { WEIGHT_DTYPES, type WeightDtype } from '../model/config.js';
import { BUILTIN_MODELS } from '../model/builtin.js';
import { loadModel } from '../model/load.js';
import { Fabric } from '../topology/fabric.js';
import { loadTopology, parseSetArg } from '../topology/load.js';
import { compile } from '../compiler/compile.js';
import { LAYOUT_SEARCHES, type LayoutSearch, type Plan } from '../compiler/plan.js';
import { UsageError } from '../util/errors.js';

/** Flags shared by every command that compiles a Plan (compile, generate, and later serve). */
export interface PlanFlags {
  topology: string;
  model: string;
  dtype: WeightDtype;
  batch?: number;
  context?: number;
  promptTokens?: number;
  microBatches?: number;
  layoutSearch: LayoutSearch;
  set: string[];
}

/** Parser of an integer flag (decimal digits) >= min, for every command's integer flags. */
export function integerFlag(flag: string, min = 1) {
  const expected = min === 1 ? 'positive integer' : `integer >= ${min}`;
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < min) {
      throw new UsageError('RACKEMU_ERR_USAGE', `${flag}: expected ${min === 1 ? 'a' : 'an'} ${expected}, got "${v}"`, {
        details: { path: flag, expected, got: v },
      });
    }
    return n;
  };
}

export function addPlanFlags(cmd: Command): Command {
  return cmd
    .requiredOption('--topology <file>', 'topology YAML file (see topologies/)')
    .requiredOption(
      '--model <name|folder>',
      `built-in model (${Object.keys(BUILTIN_MODELS).join(', ')}) or a Hugging Face folder`,
    )
    .addOption(new Option('--dtype <dtype>', 'weight storage dtype').choices(WEIGHT_DTYPES as string[]).default('bf16'))
    .option('--batch <n>', 'sequences decoded together', integerFlag('--batch'))
    .option('--context <n>', 'KV-cache positions per sequence (default: the model maximum)', integerFlag('--context'))
    .option(
      '--prompt-tokens <n>',
      'prompt length the TTFT prediction assumes (default 128)',
      integerFlag('--prompt-tokens'),
    )
    .option(
      '--micro-batches <n>',
      'micro-batches of --batch sequences pipelined through the layer groups (default 1)',
      integerFlag('--micro-batches'),
    )
    .addOption(
      new Option(
        '--layout-search <search>',
        'group shapes searched: full (attention by KV heads or query-head groups, on chips of its own or not; timed exactly) or classic (attention by KV heads on FFN chips)',
      )
        .choices(LAYOUT_SEARCHES as string[])
        .default('full'),
    )
    .option(
      '--set <key.path=value>',
      'override a topology key (repeatable), e.g. --set chip.sram_mib=0.05',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    );
}

export interface CompiledPlan {
  plan: Plan;
  fabric: Fabric;
}

/** topology + model -> Plan, from the shared flags. */
export function planFromFlags(
  f: PlanFlags,
  extra: { promptTokens?: number; withWeights?: boolean } = {},
): CompiledPlan & { weights: ReturnType<typeof loadModel>['weights'] } {
  const topology = loadTopology(f.topology, f.set.map(parseSetArg));
  const { config, weights } = loadModel(f.model, { dtype: f.dtype, withWeights: extra.withWeights ?? false });
  const fabric = new Fabric(topology);
  const plan = compile(
    topology,
    config,
    {
      dtype: f.dtype,
      batch: f.batch,
      context: f.context,
      promptTokens: extra.promptTokens ?? f.promptTokens,
      microBatches: f.microBatches,
      layoutSearch: f.layoutSearch,
    },
    fabric,
  );
  return { plan, fabric, weights };
}
