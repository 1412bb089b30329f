import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * Grafana's side of the dashboards without Grafana: read grafana/ (provisioning and dashboard JSON),
 * list every PromQL query a dashboard runs (panel targets, annotations, template variables), and
 * substitute Grafana's variables the way Grafana does before it sends a query to Prometheus.
 */

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const GRAFANA_DIR = join(ROOT, 'grafana');
export const DASHBOARD_DIR = join(GRAFANA_DIR, 'dashboards');
export const ALERTS_DIR = join(GRAFANA_DIR, 'alerts');

export interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly datasource?: unknown;
  readonly format?: string;
  readonly instant?: boolean;
}

export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { h: number; w: number; x: number; y: number };
  readonly datasource?: unknown;
  readonly targets?: Target[];
  readonly panels?: Panel[];
  readonly transformations?: { id: string; options: Record<string, unknown> }[];
}

export interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query: string | { query: string };
  readonly datasource?: unknown;
}

export interface Annotation {
  readonly name: string;
  /** The query: under `target` since Grafana 10, at the top level before (we write both). */
  readonly expr?: string;
  readonly target?: { readonly expr?: string; readonly refId?: string };
  readonly builtIn?: number;
  readonly datasource?: unknown;
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: Panel[];
  readonly templating: { list: Variable[] };
  readonly annotations: { list: Annotation[] };
}

export interface DashboardFile {
  readonly file: string;
  readonly dashboard: Dashboard;
}

export function loadDashboards(): DashboardFile[] {
  return readdirSync(DASHBOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARD_DIR, file), 'utf8')) as Dashboard }));
}

export function loadYaml<T>(...path: string[]): T {
  return parse(readFileSync(join(GRAFANA_DIR, ...path), 'utf8')) as T;
}

/** Every panel, rows and the panels inside collapsed rows included. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** One PromQL query of a dashboard, and where it comes from. */
export interface DashboardQuery {
  readonly where: string;
  readonly kind: 'panel' | 'annotation';
  readonly expr: string;
}

export function dashboardQueries(d: Dashboard): DashboardQuery[] {
  const panels = allPanels(d).flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      where: `${d.uid} #${p.id} "${p.title}" ${t.refId}`,
      kind: 'panel' as const,
      expr: t.expr,
    })),
  );
  const annotations = d.annotations.list
    .filter((a) => (a.target?.expr ?? a.expr) !== undefined)
    .map((a) => ({
      where: `${d.uid} annotation "${a.name}"`,
      kind: 'annotation' as const,
      expr: (a.target?.expr ?? a.expr)!,
    }));
  return [...panels, ...annotations];
}

export const variableQuery = (v: Variable): string => (typeof v.query === 'string' ? v.query : v.query.query);

/**
 * `$name`, `${name}` and `${name:format}`, Grafana's variable syntaxes in queries ([[name]] is deprecated).
 * Not `$1`: label_replace's group references, which Grafana leaves alone (no variable has that name).
 */
const VARIABLE_RE = /\$\{([a-zA-Z_]\w*)(?::\w+)?\}|\$([a-zA-Z_]\w*)/g;

/** The names of the variables a query refers to (Grafana's own `$__...` included). */
export function referencedVariables(expr: string): string[] {
  return [...expr.matchAll(VARIABLE_RE)].map((m) => m[1] ?? m[2]);
}

/** Grafana's global variables that a Prometheus query may use. */
export const BUILTIN_VARIABLES = [
  '__rate_interval',
  '__interval',
  '__interval_ms',
  '__range',
  '__range_s',
  '__range_ms',
];

/** The value Grafana gives a variable when "All" is selected: its allValue, `.*`, in the query. */
export const ALL = '$__all';

/**
 * The query Grafana would send: template variables replaced by `values` (escaped for a regex matcher,
 * as Grafana formats a multi-value variable for Prometheus) and the interval variables by `interval`.
 */
export function substitute(expr: string, values: Readonly<Record<string, string>>, interval = '1m'): string {
  const seconds = String(Number.parseInt(interval, 10) * (interval.endsWith('m') ? 60 : 1));
  const builtins: Record<string, string> = {
    __rate_interval: interval,
    __interval: interval,
    __range: interval,
    __interval_ms: String(Number(seconds) * 1000),
    __range_s: seconds,
    __range_ms: String(Number(seconds) * 1000),
  };
  return expr.replace(VARIABLE_RE, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare!;
    if (name in builtins) return builtins[name];
    if (!(name in values)) return whole;
    if (values[name] === ALL) return '.*'; // the variables' allValue
    return values[name].replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&');
  });
}

/** `label_values(metric{selector}, label)` as a PromQL query that lists the same values: `count by (label) (...)`. */
export function labelValuesAsQuery(query: string): { label: string; expr: string } {
  const m = /^label_values\((?:(.+),\s*)?(\w+)\)\s*$/.exec(query);
  if (!m) throw new Error(`not a label_values() query: ${query}`);
  const selector = m[1] ?? `{${m[2]}!=""}`;
  return { label: m[2], expr: `count by (${m[2]}) (${selector})` };
}

/** Every datasource reference in a JSON value (any `datasource` key), with its path. */
export function datasourceRefs(value: unknown, path = '$'): { path: string; ref: unknown }[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => datasourceRefs(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) =>
    k === 'datasource' ? [{ path: `${path}.${k}`, ref: v }] : datasourceRefs(v, `${path}.${k}`),
  );
}

/**
 * Metric family names a PromQL query reads: identifiers followed by a selector, a range, an operator or
 * the end, that are not functions, keywords or label names. Good enough for the queries we write.
 */
export function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutGrouping = withoutStrings.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = [...withoutGrouping.matchAll(/(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)/g)]
    .filter((m) => m[2] !== '(')
    .map((m) => m[1]);
  const keywords = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'by', 'without', 'on', 'ignoring']);
  // label names inside selectors: name followed by =, !=, =~, !~
  const labels = new Set([...withoutGrouping.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]));
  return [...new Set(names.filter((n) => !keywords.has(n.toLowerCase()) && !labels.has(n) && !/^\d/.test(n)))];
}

/** Families docs/metrics.md documents, with `{virtual,wall}` brace forms expanded. */
export function documentedFamilies(markdown: string): Set<string> {
  const names = new Set<string>();
  for (const m of markdown.matchAll(/`((?:rackemu_|vllm:)[a-z0-9_:{},]+)`/g)) {
    const brace = /^(.*)\{([^}]+)\}(.*)$/.exec(m[1]);
    if (brace) for (const alt of brace[2].split(',')) names.add(`${brace[1]}${alt}${brace[3]}`);
    else names.add(m[1]);
  }
  return names;
}
