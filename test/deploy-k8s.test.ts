import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { NatsConnection } from '@nats-io/transport-node';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import ts from 'typescript';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTopology } from '../src/topology/load.js';
import { ROOT } from './helpers/cli.js';
import {
  checkRackemuArgs,
  deliver,
  flagValue,
  natsConnect,
  permissionViolations,
  plannedHosts,
  renderNatsConf,
  startNatsServer,
  type NatsProcess,
} from './helpers/deploy-files.js';
import { findBinary, freePort } from './helpers/prometheus.js';

// deploy/k8s validated offline: every object against the Kubernetes schemas (kubernetes-models'
// validate(), and TypeScript's excess-property check against its types, which catches misspelt
// fields as `kubectl apply --validate=strict` would), the references between objects, the rackemu
// command lines against the CLI, the host StatefulSet against the Plan, the sizing against
// BENCHMARKS.md, the NATS Helm values against the chart's keys, and their accounts in a real nats-server.

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
};
type Labels = Record<string, string>;
interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, Record<string, unknown>> }[];
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
  readinessProbe?: { httpGet?: { port: string | number } };
  livenessProbe?: { httpGet?: { port: string | number } };
}
interface PodTemplate {
  metadata: { labels: Labels };
  spec: { containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
}
interface Kustomization {
  namespace: string;
  resources?: string[];
  configMapGenerator?: { name: string; files: string[]; options?: { labels?: Labels } }[];
  images?: { name: string; newName?: string; newTag?: string }[];
}

const DIR = join(ROOT, 'deploy/k8s');
const readYaml = <T>(file: string): T => parse(readFileSync(file, 'utf8')) as T;
const docs = (file: string): Obj[] =>
  parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);

/** The objects a kustomization directory builds: its resources, then its generated ConfigMaps. */
function build(dir: string): { objects: Obj[]; files: string[]; k: Kustomization } {
  const k = readYaml<Kustomization>(join(dir, 'kustomization.yaml'));
  const files = (k.resources ?? []).map((r) => join(dir, r));
  const objects = files.flatMap(docs);
  for (const g of k.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const f of g.files) {
      const [key, path] = f.includes('=') ? f.split('=') : [basename(f), f];
      data[key] = readFileSync(resolve(dir, path), 'utf8');
    }
    objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: g.name, labels: g.options?.labels ?? {} },
      data,
    });
  }
  for (const o of objects) if (o.kind !== 'Namespace') o.metadata.namespace = k.namespace;
  return { objects, files, k };
}

const base = build(DIR);
const monitoring = build(join(DIR, 'monitoring'));
const secrets = docs(join(DIR, 'nats-credentials.example.yaml'));
const ALL = [...base.objects, ...monitoring.objects, ...secrets];
const find = <T = Obj>(kind: string, name: string): T => {
  const o = ALL.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o as T;
};
const spec = (o: Obj) => o.spec as Record<string, unknown>;
const hosts = find('StatefulSet', 'rackemu-host');
const coordinator = find('Deployment', 'rackemu-coordinator');
const podOf = (o: Obj) => spec(o).template as PodTemplate;
const containerOf = (o: Obj) => podOf(o).spec.containers[0];
const matches = (selector: Labels, labels: Labels | undefined) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** The topology file behind the coordinator's --topology (a ConfigMap mount), in this repository. */
function coordinatorTopology(): string {
  const c = containerOf(coordinator);
  const path = flagValue(c.args!, '--topology')!;
  const mount = c.volumeMounts!.find((m) => path.startsWith(`${m.mountPath}/`))!;
  const volume = podOf(coordinator).spec.volumes!.find((v) => v.name === mount.name)!;
  const gen = base.k.configMapGenerator!.find((g) => g.name === volume.configMap!.name)!;
  const key = path.slice(mount.mountPath.length + 1);
  const file = gen.files.find((f) => f.startsWith(`${key}=`))!.split('=')[1];
  return resolve(DIR, file);
}

const VALIDATORS: Record<string, new (o: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
};
const TYPES: Record<string, [string, string]> = {
  'v1/Namespace': ['kubernetes-models/v1/Namespace', 'INamespace'],
  'v1/Service': ['kubernetes-models/v1/Service', 'IService'],
  'v1/Secret': ['kubernetes-models/v1/Secret', 'ISecret'],
  'v1/ConfigMap': ['kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  'apps/v1/StatefulSet': ['kubernetes-models/apps/v1/StatefulSet', 'IStatefulSet'],
  'apps/v1/Deployment': ['kubernetes-models/apps/v1/Deployment', 'IDeployment'],
  'networking.k8s.io/v1/NetworkPolicy': ['kubernetes-models/networking.k8s.io/v1/NetworkPolicy', 'INetworkPolicy'],
  'monitoring.coreos.com/v1/ServiceMonitor': [
    '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    'IServiceMonitor',
  ],
};

/** TypeScript's diagnostics of `objects` assigned to their kubernetes-models types (unknown fields, wrong types). */
function typeCheck(objects: readonly Obj[]): string[] {
  const kinds = [...new Set(objects.map((o) => `${o.apiVersion}/${o.kind}`))];
  const lines = kinds.map((k) => `import type { ${TYPES[k][1]} } from '${TYPES[k][0]}';`);
  objects.forEach((o, i) => {
    const [, type] = TYPES[`${o.apiVersion}/${o.kind}`];
    lines.push(`// ${o.kind} ${o.metadata.name}`, `export const o${i}: ${type} = ${JSON.stringify(o, null, 2)};`);
  });
  const source = lines.join('\n');
  const file = join(ROOT, 'test', '__deploy_k8s_objects__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const near =
      source
        .split('\n')
        .slice(0, line + 1)
        .reverse()
        .find((l) => l.startsWith('// ')) ?? '';
    return `${near}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
}

describe('deploy - k8s objects', () => {
  it('every manifest is part of a kustomization, or one of the documented extras', () => {
    const listed = new Set([...base.files, ...monitoring.files]);
    const extras = ['nats-values.yaml', 'nats-credentials.example.yaml', 'monitoring/scrape-config.yaml'];
    const walk = (d: string): string[] =>
      readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]));
    for (const f of walk(DIR).filter((f) => f.endsWith('.yaml'))) {
      const rel = relative(DIR, f);
      if (basename(f) === 'kustomization.yaml' || extras.includes(rel)) continue;
      expect(listed.has(f), `${rel} is in no kustomization`).toBe(true);
    }
    for (const f of listed) expect(existsSync(f), f).toBe(true);
    for (const e of extras) expect(existsSync(join(DIR, e)), e).toBe(true);
  });

  it('every object validates against its Kubernetes schema (kubernetes-models)', () => {
    expect(ALL.length).toBeGreaterThanOrEqual(11);
    for (const o of ALL) {
      const Model = VALIDATORS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion} ${o.kind}: no validator`).toBeDefined();
      expect(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it('no object has a field its schema does not know (TypeScript against the kubernetes-models types)', () => {
    expect(typeCheck(ALL)).toEqual([]);
    // the check does catch a misspelt field
    const broken = structuredClone(hosts);
    (podOf(broken).spec.containers[0] as unknown as Record<string, unknown>).readinesProbe = {};
    expect(typeCheck([broken]).join('\n')).toMatch(/readinesProbe/);
  });

  it('references resolve: Secrets, ConfigMaps, volumes, named ports, selectors, the headless Service', () => {
    for (const w of [hosts, coordinator]) {
      const pod = podOf(w);
      expect(matches((spec(w).selector as { matchLabels: Labels }).matchLabels, pod.metadata.labels)).toBe(true);
      const volumes = new Set((pod.spec.volumes ?? []).map((v) => v.name));
      for (const c of pod.spec.containers) {
        const ports = new Set((c.ports ?? []).map((p) => p.name));
        for (const probe of [c.readinessProbe, c.livenessProbe])
          if (typeof probe?.httpGet?.port === 'string') expect(ports.has(probe.httpGet.port)).toBe(true);
        for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${w.metadata.name}: ${m.name}`).toBe(true);
        const env = new Set((c.env ?? []).map((e) => e.name));
        for (const a of c.args ?? [])
          for (const m of a.matchAll(/\$\(([A-Z_]+)\)/g)) expect(env.has(m[1]), `${a}: $(${m[1]})`).toBe(true);
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef as { name: string; key: string; optional?: boolean } | undefined;
          if (!ref) continue;
          const secret = find<Obj & { stringData: Record<string, string> }>('Secret', ref.name);
          expect(secret.stringData[ref.key], `${ref.name}/${ref.key}`).toBeDefined();
        }
      }
      for (const v of pod.spec.volumes ?? []) if (v.configMap) find('ConfigMap', v.configMap.name);
    }
    for (const svc of ALL.filter((o) => o.kind === 'Service')) {
      const s = spec(svc) as { selector: Labels; ports: { targetPort: string }[] };
      const backends = [hosts, coordinator].filter((w) => matches(s.selector, podOf(w).metadata.labels));
      expect(backends.length, `Service ${svc.metadata.name} selects one workload`).toBe(1);
      const ports = new Set(containerOf(backends[0]).ports!.map((p) => p.name));
      for (const p of s.ports) expect(ports.has(p.targetPort), `${svc.metadata.name}: ${p.targetPort}`).toBe(true);
    }
    const headless = find('Service', spec(hosts).serviceName as string);
    expect(spec(headless).clusterIP).toBe('None');
    expect(spec(hosts).podManagementPolicy).toBe('Parallel');
    for (const o of ALL) if (o.kind !== 'Namespace') expect(o.metadata.namespace, o.metadata.name).toBe('rackemu');
    // the image kustomize names is the one the pods use
    for (const w of [hosts, coordinator])
      expect(base.k.images!.map((i) => `${i.name}:${i.newTag}`)).toContain(containerOf(w).image);
  });

  it('the ServiceMonitor scrapes both Services on their ports, as roles coordinator and host', () => {
    const sm = find('ServiceMonitor', 'rackemu');
    const s = spec(sm) as {
      selector: { matchLabels: Labels };
      namespaceSelector: { matchNames: string[] };
      endpoints: { port: string; honorLabels: boolean; relabelings: { targetLabel: string; replacement: string }[] }[];
    };
    expect(s.namespaceSelector.matchNames).toContain('rackemu');
    const selected = ALL.filter((o) => o.kind === 'Service' && matches(s.selector.matchLabels, o.metadata.labels));
    expect(selected.map((o) => o.metadata.name).sort()).toEqual(['rackemu-coordinator', 'rackemu-hosts']);
    const portNames = new Set(selected.flatMap((o) => (spec(o).ports as { name: string }[]).map((p) => p.name)));
    const roles = new Set<string>();
    for (const e of s.endpoints) {
      expect(portNames.has(e.port), e.port).toBe(true);
      expect(e.honorLabels).toBe(true);
      roles.add(e.relabelings.find((r) => r.targetLabel === 'role')!.replacement);
    }
    expect([...roles].sort()).toEqual(['coordinator', 'host']);
  });

  it('the dashboards ConfigMap holds every dashboard of grafana/dashboards, under the 1 MiB limit', () => {
    const cm = find<Obj & { data: Record<string, string> }>('ConfigMap', 'rackemu-dashboards');
    const dashboards = readdirSync(join(ROOT, 'grafana/dashboards')).filter((f) => f.endsWith('.json'));
    expect(Object.keys(cm.data).sort()).toEqual(dashboards.sort());
    for (const text of Object.values(cm.data)) expect(() => JSON.parse(text)).not.toThrow();
    expect(Buffer.byteLength(JSON.stringify(cm))).toBeLessThan(1024 * 1024);
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
  });

  it('the NetworkPolicy guards the pods of the NATS chart: routes from NATS only, clients from rackemu', () => {
    const np = spec(find('NetworkPolicy', 'nats')) as {
      podSelector: { matchLabels: Labels };
      ingress: { from: { podSelector?: { matchLabels?: Labels } }[]; ports: { port: number }[] }[];
    };
    // the chart's StatefulSet pods carry app.kubernetes.io/{name,component}: nats (its nats.selectorLabels)
    expect(np.podSelector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'nats',
      'app.kubernetes.io/component': 'nats',
    });
    const rule = (port: number) => np.ingress.find((r) => r.ports.some((p) => p.port === port))!;
    expect(rule(6222).from).toEqual([{ podSelector: { matchLabels: np.podSelector.matchLabels } }]);
    const clients = rule(4222).from[0].podSelector!.matchLabels!;
    for (const w of [hosts, coordinator]) expect(matches(clients, podOf(w).metadata.labels)).toBe(true);
  });
});

describe('deploy - k8s rackemu pods', () => {
  it('the command lines use options the CLI has (or pending ones: docs/cluster.md)', async () => {
    for (const w of [hosts, coordinator]) {
      const { problems } = await checkRackemuArgs(containerOf(w).args!);
      expect(problems, w.metadata.name).toEqual([]);
    }
    const h = containerOf(hosts).args!;
    const c = containerOf(coordinator).args!;
    expect(h[0]).toBe('host');
    expect(c[0]).toBe('serve');
    expect(flagValue(c, '--isolation')).toBe('remote');
    expect(flagValue(h, '--deployment')).toBe(flagValue(c, '--deployment'));
    expect(flagValue(h, '--nats-user')).toBe(flagValue(c, '--nats-user'));
    expect(flagValue(h, '--ordinal')).toBe('$(POD_INDEX)');
    const podIndex = containerOf(hosts).env!.find((e) => e.name === 'POD_INDEX')!;
    expect(podIndex.valueFrom?.fieldRef?.fieldPath).toBe("metadata.labels['apps.kubernetes.io/pod-index']");
    expect(spec(coordinator).replicas).toBe(1);
    expect((spec(coordinator).strategy as { type: string }).type).toBe('Recreate');
  });

  it('one host-agent pod per host the Plan needs (the pod ordinal is the host’s index)', () => {
    const planned = plannedHosts(containerOf(coordinator).args!, coordinatorTopology());
    expect(spec(hosts).replicas).toBe(planned.length);
  });

  it('memory requests cover the measured memory per host agent (BENCHMARKS.md) and the compile peak', () => {
    const bench = readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8');
    const peak = /peak RSS over all its runs[^|]*nats transport \| (\d+) MB/.exec(bench);
    expect(peak, 'BENCHMARKS.md: the NATS peak RSS row of "Memory: 576 chips"').not.toBeNull();
    const perChipMb = Number(peak![1]) / 576;
    const topology = loadTopology(coordinatorTopology());
    const mib = (q: string) => {
      const m = /^(\d+)(Mi|Gi)$/.exec(q)!;
      return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
    };
    const r = containerOf(hosts).resources!;
    const needMb = topology.chips_per_node * perChipMb + 80; // chips + the host agent's own process
    expect(mib(r.requests!.memory) * 1.048576).toBeGreaterThanOrEqual(needMb);
    expect(mib(r.limits!.memory)).toBeGreaterThan(mib(r.requests!.memory));
    const compile = /mixtral-8x7b on groq-576 \|[^\n]*\| (\d+) MB \|/.exec(bench);
    expect(compile, 'BENCHMARKS.md: the compile row of mixtral-8x7b on groq-576').not.toBeNull();
    const rc = containerOf(coordinator).resources!;
    expect(mib(rc.requests!.memory)).toBeGreaterThan(Number(compile![1]) * 2);
  });

  it('monitoring/scrape-config.yaml passes promtool and selects the Services of the ServiceMonitor', async () => {
    type Job = {
      kubernetes_sd_configs?: { role: string; namespaces: { names: string[] } }[];
      static_configs?: { targets: string[] }[];
      relabel_configs: { regex: string; action?: string; source_labels?: string[] }[];
    };
    const config = readYaml<{ scrape_configs: Job[] }>(join(DIR, 'monitoring/scrape-config.yaml'));
    const job = config.scrape_configs[0];
    // Debian's Prometheus is built without Kubernetes discovery, so promtool checks the job with a
    // static target in its place; the discovery block is checked here
    expect(job.kubernetes_sd_configs).toEqual([{ role: 'endpoints', namespaces: { names: ['rackemu'] } }]);
    const checked = {
      scrape_configs: [{ ...job, kubernetes_sd_configs: undefined, static_configs: [{ targets: ['127.0.0.1:1'] }] }],
    };
    const promtool = findBinary('promtool');
    expect(promtool, 'promtool (Debian package prometheus: scripts/ensure-deps.sh)').toBeDefined();
    const tmp = await mkdtemp(join(tmpdir(), 'rackemu-k8s-prom-'));
    try {
      await writeFile(join(tmp, 'prometheus.yml'), JSON.stringify(checked));
      const r = spawnSync(promtool!, ['check', 'config', join(tmp, 'prometheus.yml')], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    // meta labels of the endpoints role only
    for (const r of job.relabel_configs)
      for (const l of r.source_labels ?? [])
        expect(l).toMatch(/^__meta_kubernetes_(service_label_\w+|endpoint_port_name|pod_name)$/);
    const keep = job.relabel_configs.filter((r) => r.action === 'keep');
    const [svc, port] = keep.map((r) => new RegExp(`^(?:${r.regex})$`));
    for (const name of ['rackemu-coordinator', 'rackemu-hosts']) {
      const s = find('Service', name);
      const l = s.metadata.labels!;
      expect(svc.test(`${l['app.kubernetes.io/name']};${l['rackemu.dev/deployment']}`)).toBe(true);
      for (const p of spec(s).ports as { name: string }[]) expect(port.test(p.name)).toBe(true);
    }
  });
});

// The keys of the NATS chart's values.yaml (nats-io/k8s, chart 2.14.2; the same in 1.2) that these
// values may use; FREE marks a subtree the chart passes on as given (merge/patch, env, maps).
const FREE = true;
type Keys = { [k: string]: Keys | typeof FREE };
const CHART_KEYS: Keys = {
  global: { image: { pullPolicy: FREE, pullSecretNames: FREE, registry: FREE }, labels: FREE },
  nameOverride: FREE,
  fullnameOverride: FREE,
  namespaceOverride: FREE,
  tlsCA: FREE,
  config: {
    cluster: {
      enabled: FREE,
      port: FREE,
      replicas: FREE,
      noAdvertise: FREE,
      routeURLs: { user: FREE, password: FREE, useFQDN: FREE, k8sClusterDomain: FREE },
      tls: FREE,
      merge: FREE,
      patch: FREE,
    },
    jetstream: { enabled: FREE, fileStore: FREE, memoryStore: FREE, merge: FREE, patch: FREE },
    nats: { port: FREE, tls: FREE },
    leafnodes: FREE,
    websocket: FREE,
    mqtt: FREE,
    gateway: FREE,
    monitor: { enabled: FREE, port: FREE, tls: FREE },
    profiling: FREE,
    resolver: FREE,
    serverNamePrefix: FREE,
    merge: FREE,
    patch: FREE,
  },
  container: { image: FREE, ports: FREE, env: FREE, merge: FREE, patch: FREE },
  reloader: FREE,
  promExporter: { enabled: FREE, image: FREE, port: FREE, env: FREE, merge: FREE, patch: FREE, podMonitor: FREE },
  service: FREE,
  statefulSet: FREE,
  podTemplate: { configChecksumAnnotation: FREE, topologySpreadConstraints: FREE, merge: FREE, patch: FREE },
  headlessService: FREE,
  configMap: FREE,
  podDisruptionBudget: FREE,
  serviceAccount: FREE,
  natsBox: {
    enabled: FREE,
    contexts: FREE,
    defaultContextName: FREE,
    container: FREE,
    deployment: FREE,
    podTemplate: FREE,
    contextsSecret: FREE,
    contentsSecret: FREE,
    serviceAccount: FREE,
  },
  extraResources: FREE,
};

/** Paths of `values` that `keys` does not have. */
function unknownKeys(values: Record<string, unknown>, keys: Keys, path = ''): string[] {
  return Object.entries(values).flatMap(([k, v]) => {
    const allowed = keys[k];
    if (allowed === undefined) return [`${path}${k}`];
    if (allowed === FREE || v === null || typeof v !== 'object') return [];
    return unknownKeys(v as Record<string, unknown>, allowed, `${path}${k}.`);
  });
}

interface NatsUser {
  user: string;
  password: string;
  permissions: { publish: { allow: string[] }; subscribe: { allow: string[] } };
}
interface NatsValues {
  fullnameOverride: string;
  config: {
    cluster: { enabled: boolean; replicas: number };
    jetstream: { enabled: boolean };
    merge: { accounts: Record<string, { users: NatsUser[] }> } & Record<string, unknown>;
  };
  container: { env: Record<string, { valueFrom: { secretKeyRef: { name: string; key: string } } }> };
}

describe('deploy - k8s NATS Helm values', () => {
  const values = readYaml<NatsValues>(join(DIR, 'nats-values.yaml'));
  const users = Object.values(values.config.merge.accounts).flatMap((a) => a.users);
  const passwordVar = (u: NatsUser) => /^<<\s*\$([A-Z_][A-Z0-9_]*)\s*>>$/.exec(u.password)?.[1];

  it('use only keys the chart has: a cluster of 3, JetStream off, monitoring on', () => {
    expect(unknownKeys(values as unknown as Record<string, unknown>, CHART_KEYS)).toEqual([]);
    expect(unknownKeys({ config: { jetstrem: {}, merge: { anything: 1 } } }, CHART_KEYS)).toEqual(['config.jetstrem']);
    expect(values.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(values.config.jetstream.enabled).toBe(false);
  });

  it('every deployment the pods run has an account user limited to rackemu.<deployment>.>, its password from the Secret the pods read', () => {
    const c = containerOf(coordinator);
    const deployment = flagValue(c.args!, '--deployment')!;
    const user = users.find((u) => u.user === flagValue(c.args!, '--nats-user'));
    expect(user, 'the pods’ NATS user is in the chart values').toBeDefined();
    for (const u of users) {
      const own = u.permissions.publish.allow.filter((s) => s.startsWith('rackemu.'));
      expect(own.length, u.user).toBe(1);
      expect(own[0]).toMatch(/^rackemu\.[A-Za-z0-9-]+\.>$/);
      expect(u.permissions.subscribe.allow.filter((s) => s.startsWith('rackemu.'))).toEqual(own);
      for (const s of [...u.permissions.publish.allow, ...u.permissions.subscribe.allow])
        expect(s === own[0] || s === '_INBOX.>', `${u.user}: ${s}`).toBe(true);
      const v = passwordVar(u);
      expect(v, `${u.user}: password from a variable`).toBeDefined();
      expect(values.container.env[v!]?.valueFrom.secretKeyRef, `${v} in container.env`).toBeDefined();
    }
    expect(user!.permissions.publish.allow).toContain(`rackemu.${deployment}.>`);
    // the servers check the password the pods present: the same Secret key
    const podRef = c.env!.find((e) => e.name === 'RACKEMU_NATS_PASSWORD')!.valueFrom!.secretKeyRef;
    expect(values.container.env[passwordVar(user!)!].valueFrom.secretKeyRef).toEqual(podRef);
    // no anonymous user, no second way in
    expect(JSON.stringify(values.config.merge)).not.toMatch(/no_auth_user|authorization/);
    // the pods reach the chart's Service
    for (const w of [hosts, coordinator]) {
      const args = containerOf(w).args!;
      for (const url of (flagValue(args, '--nats') ?? flagValue(args, '--nats-url')!).split(','))
        expect(new URL(url).hostname).toBe(values.fullnameOverride);
    }
  });

  describe('rendered as the chart renders config.merge, in a real nats-server', () => {
    let server: NatsProcess | null = null;
    let tmp = '';
    const open: NatsConnection[] = [];
    const c = containerOf(coordinator);
    const deployment = flagValue(c.args!, '--deployment')!;
    const user = flagValue(c.args!, '--nats-user')!;
    const pass = '5f4dcc3b5aa765d61d8327deb882cf99';
    const connectAs = async (creds?: { user: string; pass: string }) => {
      const r = await natsConnect(server!.url, creds);
      if ('nc' in r) open.push(r.nc);
      return r;
    };

    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'rackemu-k8s-nats-'));
      const conf = join(tmp, 'nats.conf');
      await writeFile(conf, renderNatsConf(values.config.merge));
      const env = Object.fromEntries(Object.keys(values.container.env).map((k) => [k, pass]));
      server = await startNatsServer(
        [`--config=${conf}`],
        { port: await freePort(), monitorPort: await freePort() },
        env,
      );
    });
    afterAll(async () => {
      await Promise.all(open.map((nc) => nc.close().catch(() => undefined)));
      await server?.stop();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('refuses clients without credentials or with a wrong password', async () => {
      for (const r of [await connectAs(), await connectAs({ user, pass: 'wrong' })])
        expect('refused' in r ? r.refused : 'connected').toMatch(/Authorization/i);
    });

    it("lets the deployment's user use its subjects, and no other deployment's", async () => {
      const a = await connectAs({ user, pass });
      const b = await connectAs({ user, pass });
      if (!('nc' in a) || !('nc' in b)) throw new Error('refused');
      expect(await deliver(a.nc, b.nc, `rackemu.${deployment}.c.r0_n0_c0`)).toBe('hello');
      expect(await permissionViolations(a.nc, `rackemu.${deployment}.k.r0_n0_c0`)).toEqual([]);
      expect((await permissionViolations(a.nc, 'rackemu.other.c.r0_n0_c0')).length).toBe(2);
    });
  });
});
