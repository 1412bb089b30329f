import { compile } from './compile.js';
import { predict } from './report.js';
export const PUBLISHED = [
    {
        topology: 'groq-576',
        model: 'mixtral-8x7b',
        metric: 'tokens_per_s_per_user',
        published: 480,
        source: 'Groq via TechPowerUp [B] (others say 430-500)',
        calibration: true,
    },
    {
        topology: 'h100-8x',
        model: 'mixtral-8x7b',
        metric: 'tokens_per_s_per_user',
        published: 280,
        source: 'SemiAnalysis, 8x H100 without speculative decoding [A]',
        calibration: false,
    },
];
export function fidelityRows(load, model) {
    return PUBLISHED.map((f) => {
        const predicted = predict(compile(load(f.topology), model(f.model), {}))[f.metric];
        return { ...f, predicted, gap: (predicted - f.published) / f.published };
    });
}
export function fidelityTable(rows) {
    const lines = [
        '| topology | model | metric | published | predicted | gap | role |',
        '|---|---|---|---|---|---|---|',
        ...rows.map((r) => `| ${r.topology} | ${r.model} | ${r.metric} | ${r.published} (${r.source}) | ${r.predicted.toFixed(1)} | ${r.gap >= 0 ? '+' : ''}${(100 * r.gap).toFixed(1)}% | ${r.calibration ? 'calibration target' : 'test of the model'} |`),
    ];
    return lines.join('\n');
}
//# sourceMappingURL=fidelity.js.map