import { Option } from 'commander';
import { WEIGHT_DTYPES } from '../model/config.js';
import { loadModel } from '../model/load.js';
import { Fabric } from '../topology/fabric.js';
import { loadTopology, parseSetArg } from '../topology/load.js';
import { compile } from '../compiler/compile.js';
import { UsageError } from '../util/errors.js';
function int(flag) {
    return (v) => {
        const n = Number(v);
        if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < 1) {
            throw new UsageError('RACKEMU_ERR_USAGE', `${flag}: expected a positive integer, got "${v}"`, { details: { path: flag, expected: 'positive integer', got: v } });
        }
        return n;
    };
}
export function addPlanFlags(cmd) {
    return cmd
        .requiredOption('--topology <file>', 'topology YAML file (see topologies/)')
        .requiredOption('--model <name|folder>', 'built-in model (mixtral-8x7b, mixtral-tiny, llama-2-70b, mistral-7b) or a Hugging Face folder')
        .addOption(new Option('--dtype <dtype>', 'weight storage dtype').choices(WEIGHT_DTYPES).default('bf16'))
        .option('--batch <n>', 'sequences decoded together', int('--batch'))
        .option('--context <n>', 'KV-cache positions per sequence (default: the model maximum)', int('--context'))
        .option('--prompt-tokens <n>', 'prompt length the TTFT prediction assumes (default 128)', int('--prompt-tokens'))
        .option('--set <key.path=value>', 'override a topology key (repeatable), e.g. --set chip.sram_mib=0.05', (v, prev) => [...prev, v], []);
}
/** topology + model -> Plan, from the shared flags. */
export function planFromFlags(f, extra = {}) {
    const topology = loadTopology(f.topology, f.set.map(parseSetArg));
    const { config, weights } = loadModel(f.model, { dtype: f.dtype, withWeights: extra.withWeights ?? false });
    const fabric = new Fabric(topology);
    const plan = compile(topology, config, { dtype: f.dtype, batch: f.batch, context: f.context, promptTokens: extra.promptTokens ?? f.promptTokens }, fabric);
    return { plan, fabric, weights };
}
//# sourceMappingURL=plan-flags.js.map