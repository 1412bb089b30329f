import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALERTS_DIR, documentedFamilies, loadYaml, metricNames, ROOT } from './helpers/grafana.js';
import { findBinary } from './helpers/prometheus.js';

/** grafana/alerts: Prometheus alerting rules for a deployment, checked and unit-tested by promtool. */

interface Rules {
  groups: { name: string; rules: { alert?: string; expr: string; for?: string; labels?: Record<string, string> }[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const RULES = join(ALERTS_DIR, 'rackemu-rules.yaml');
const TESTS = join(ALERTS_DIR, 'rackemu-rules.test.yaml');

function promtool(...args: string[]): { code: number; output: string } {
  const binary = findBinary('promtool');
  if (!binary) throw new Error('promtool is not installed (Debian package prometheus): run scripts/ensure-deps.sh');
  const r = spawnSync(binary, args, { encoding: 'utf8', cwd: ALERTS_DIR });
  return { code: r.status ?? -1, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

describe('grafana alerting rules', () => {
  const rules = loadYaml<Rules>('alerts', 'rackemu-rules.yaml').groups.flatMap((g) => g.rules);
  const alerts = rules.map((r) => r.alert).filter((a): a is string => a !== undefined);

  it('grafana - promtool check rules passes on the alerting rules', () => {
    const r = promtool('check', 'rules', RULES);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(r.code, r.output).toBe(0);
  });

  it('grafana - promtool test rules: each alert fires on its series and stays quiet on the others', () => {
    const r = promtool('test', 'rules', TESTS);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });

  it('grafana - the rules cover chip down, violations, host CPU, stalled tokens and pacing lag, each tested both ways', () => {
    expect(alerts).toEqual(
      expect.arrayContaining([
        'RackemuChipDown',
        'RackemuScheduleViolations',
        'RackemuHostCpuSaturated',
        'RackemuNoTokens',
        'RackemuPacingLag',
      ]),
    );
    const tests = loadYaml<RuleTests>('alerts', 'rackemu-rules.test.yaml');
    expect(tests.rule_files).toEqual(['rackemu-rules.yaml']);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires in some test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays quiet in some test`,
      ).toBe(true);
    }
    for (const rule of rules) expect(['critical', 'warning']).toContain(rule.labels?.severity);
  });

  it('grafana - the rules read only families docs/metrics.md documents', () => {
    const documented = documentedFamilies(readFileSync(join(ROOT, 'docs', 'metrics.md'), 'utf8'));
    const unknown = rules
      .flatMap((r) => metricNames(r.expr))
      .filter((n) => n !== 'up' && !documented.has(n.replace(/_(bucket|sum|count)$/, '')) && !documented.has(n));
    expect(unknown).toEqual([]);
  });
});
