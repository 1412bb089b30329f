import type { ModelConfig } from '../model/config.js';
import type { Topology } from '../topology/types.js';
import { compile } from './compile.js';
import { predict } from './report.js';

/**
 * Published figures the hardware model is compared with (FACTS.md). Exactly one of them was used to
 * calibrate a parameter; the others test the model. docs/fidelity.md holds the table this produces,
 * and a test keeps the two in step.
 */
export interface PublishedFigure {
  readonly topology: string;
  readonly model: string;
  readonly metric: 'tokens_per_s_per_user';
  readonly published: number;
  readonly source: string;
  /** True for the figure a parameter was fitted to (it cannot test the model). */
  readonly calibration: boolean;
}

export const PUBLISHED: readonly PublishedFigure[] = [
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

export interface FidelityRow extends PublishedFigure {
  readonly predicted: number;
  /** (predicted - published) / published */
  readonly gap: number;
}

export function fidelityRows(
  load: (topology: string) => Topology,
  model: (name: string) => ModelConfig,
): FidelityRow[] {
  return PUBLISHED.map((f) => {
    const predicted = predict(compile(load(f.topology), model(f.model), {}))[f.metric];
    return { ...f, predicted, gap: (predicted - f.published) / f.published };
  });
}

export function fidelityTable(rows: readonly FidelityRow[]): string {
  const lines = [
    '| topology | model | metric | published | predicted | gap | role |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.topology} | ${r.model} | ${r.metric} | ${r.published} (${r.source}) | ${r.predicted.toFixed(1)} | ${r.gap >= 0 ? '+' : ''}${(100 * r.gap).toFixed(1)}% | ${r.calibration ? 'calibration target' : 'test of the model'} |`,
    ),
  ];
  return lines.join('\n');
}
