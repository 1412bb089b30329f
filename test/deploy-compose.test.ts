import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import {
  checkRackemuArgs,
  PENDING_FLAGS,
  composeVariables,
  deliver,
  flagValue,
  interpolateTree,
  natsConnect,
  permissionViolations,
  plannedHosts,
  readEnvFile,
  startNatsServer,
  waitForRoutes,
  yamlStrings,
  type NatsProcess,
} from './helpers/deploy-files.js';
import { findBinary, freePort } from './helpers/prometheus.js';

// deploy/compose/compose.yaml checked offline (no container engine here): it parses, every file,
// port, variable and service it names exists or is defined, its rackemu command lines use options the
// CLI has and list the hosts the Plan needs, Prometheus's config passes promtool, and its NATS servers
// run for real (nats-server processes) with its routes and credentials.

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  networks?: string[] | Record<string, unknown>;
  healthcheck?: { test: string[] };
  hostname?: string;
}
interface Compose {
  name: string;
  services: Record<string, Service>;
  networks?: Record<string, unknown>;
  volumes?: Record<string, unknown>;
}

const DIR = join(ROOT, 'deploy/compose');
const TEXT = readFileSync(join(DIR, 'compose.yaml'), 'utf8');
const ENV_EXAMPLE = readEnvFile(join(DIR, '.env.example'));
const SECRETS = ['RACKEMU_NATS_PASSWORD', 'NATS_ROUTE_PASSWORD', 'GRAFANA_ADMIN_PASSWORD'];
// what a user's .env holds: .env.example with the secrets filled in (random and URL-safe, as it says)
const ENV: Record<string, string> = {
  ...Object.fromEntries(ENV_EXAMPLE),
  RACKEMU_NATS_PASSWORD: 'c0ffee5e1d2a4b7c9e8f0a1b2c3d4e5f',
  NATS_ROUTE_PASSWORD: '7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d',
  GRAFANA_ADMIN_PASSWORD: '0123456789abcdef0123456789abcdef',
};
const RAW: unknown = parse(TEXT, { merge: true });
const compose = interpolateTree(RAW, ENV) as Compose;
const services = compose.services;
const isRackemu = (s: Service) => s.build?.dockerfile === 'deploy/Dockerfile';
const hostServices = Object.entries(services).filter(([, s]) => isRackemu(s) && s.command?.[0] === 'host');
const coordinator = services.coordinator;
const NATS_CONF = readFileSync(join(DIR, 'nats/nats.conf'), 'utf8');
const NATS_SETTINGS = NATS_CONF.replace(/#.*$/gm, ''); // without its comments

/** A service's bind mounts: container path -> path on this machine. */
function bindMounts(s: Service): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of s.volumes ?? []) {
    const [src, dst] = v.split(':');
    if (src.startsWith('.') || src.startsWith('/')) out.set(dst, resolve(DIR, src));
  }
  return out;
}

/** Where a path inside a service's container comes from on this machine (through its bind mounts). */
function hostPath(s: Service, containerPath: string, workdir = '/app'): string | undefined {
  const abs = containerPath.startsWith('/') ? containerPath : `${workdir}/${containerPath}`;
  for (const [dst, src] of bindMounts(s)) {
    if (abs === dst) return src;
    if (abs.startsWith(`${dst}/`)) return join(src, abs.slice(dst.length + 1));
  }
  return undefined;
}

describe('deploy - compose file', () => {
  it('parses, and has the stack: 3 NATS servers, a coordinator, host agents, Prometheus, Grafana', () => {
    expect(compose.name).toBe('rackemu');
    for (const name of ['nats-1', 'nats-2', 'nats-3', 'coordinator', 'prometheus', 'grafana'])
      expect(services[name], name).toBeDefined();
    expect(hostServices.length).toBeGreaterThan(0);
    for (const [name, s] of Object.entries(services)) expect(s.image, `${name}: image`).toMatch(/\S/);
  });

  it('every variable has a default or is in .env.example, and .env.example holds no secret', () => {
    const vars = composeVariables(yamlStrings(RAW));
    expect(vars.length).toBeGreaterThan(0);
    for (const v of vars) {
      expect(v.hasDefault || ENV_EXAMPLE.has(v.name), `\${${v.name}}: no default and not in .env.example`).toBe(true);
      if (v.required) expect(ENV_EXAMPLE.has(v.name), `\${${v.name}:?}: not in .env.example`).toBe(true);
    }
    for (const name of SECRETS) {
      expect(vars.find((v) => v.name === name)?.required, `${name} is required (:?)`).toBe(true);
      expect(ENV_EXAMPLE.get(name), `${name} must be empty in .env.example`).toBe('');
    }
    // an .env copied without filling in the secrets: compose refuses to start
    expect(() => interpolateTree(RAW, Object.fromEntries(ENV_EXAMPLE))).toThrow(/is unset/);
    // .env is the user's: ignored by git
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8')).toMatch(/^deploy\/compose\/\.env$/m);
  });

  it('every bind-mounted path exists; volumes and networks are declared', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const [src, dst, mode] = v.split(':');
        expect(dst, `${name}: ${v}`).toMatch(/^\//);
        if (mode !== undefined) expect(['ro', 'rw'], `${name}: ${v}`).toContain(mode);
        if (src.startsWith('.') || src.startsWith('/')) {
          expect(existsSync(resolve(DIR, src)), `${name}: ${src} does not exist`).toBe(true);
        } else {
          expect(compose.volumes?.[src], `${name}: volume ${src} is not declared`).toBeDefined();
        }
      }
      const nets = Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {});
      for (const n of nets) expect(compose.networks?.[n], `${name}: network ${n}`).toBeDefined();
    }
  });

  it('published ports do not collide, and each reaches the port its service listens on', () => {
    const seen = new Map<string, string>();
    const listens: Record<string, number> = {
      coordinator: Number(flagValue(coordinator.command!, '--port')),
      'nats-1': Number(/^port:\s*(\d+)/m.exec(NATS_CONF)![1]),
      prometheus: 9090,
      grafana: 3000,
    };
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        const m = /^(?:([\d.]+):)?(\d+):(\d+)$/.exec(p);
        expect(m, `${name}: port ${p} is not ip:host:container`).not.toBeNull();
        const key = `${m![1] ?? '0.0.0.0'}:${m![2]}`;
        expect(seen.get(key), `${name} and ${seen.get(key)} both publish ${key}`).toBeUndefined();
        seen.set(key, name);
        expect(listens[name], `${name} publishes ${p}`).toBe(Number(m![3]));
      }
    }
    expect(seen.size).toBe(4);
    for (const key of seen.keys())
      expect(key.startsWith('127.0.0.1:'), `${key}: default is this machine only`).toBe(true);
  });

  it('depends_on names services; waiting for healthy ones needs their healthcheck', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy') expect(services[dep].healthcheck, `${dep}: healthcheck`).toBeDefined();
      }
    }
  });

  it('the rackemu image builds from deploy/Dockerfile: node:20-bookworm-slim, npm ci, npm run build, bin/rackemu.js', () => {
    const rackemu = Object.values(services).filter(isRackemu);
    expect(rackemu.length).toBe(1 + hostServices.length);
    const context = resolve(DIR, coordinator.build!.context);
    expect(context).toBe(resolve(ROOT));
    const dockerfile = readFileSync(join(context, coordinator.build!.dockerfile), 'utf8');
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    expect(froms.length).toBeGreaterThan(0);
    for (const f of froms) expect(f).toBe('node:20-bookworm-slim');
    expect(dockerfile).toMatch(/^RUN .*\bnpm ci\b/m);
    expect(dockerfile).toMatch(/^RUN .*\bnpm run build\b/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/rackemu\.js"\]/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    const ignored = readFileSync(join(context, `${coordinator.build!.dockerfile}.dockerignore`), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
    for (const m of dockerfile.matchAll(/^COPY\s+(?!--from)(.+)$/gm)) {
      const parts = m[1].trim().split(/\s+/);
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(join(context, src)), `COPY ${src}: not in the build context`).toBe(true);
        expect(ignored, `COPY ${src}: excluded by the .dockerignore`).not.toContain(src);
      }
    }
  });

  it('the rackemu command lines use options the CLI has (or pending ones: docs/cluster.md)', async () => {
    for (const [name, s] of Object.entries(services).filter(([, s]) => isRackemu(s))) {
      const { problems } = await checkRackemuArgs(s.command!);
      expect(problems, name).toEqual([]);
    }
    // the flags the CLI may still lack are the ones docs/cluster.md says it lacks
    const doc = readFileSync(join(ROOT, 'docs/cluster.md'), 'utf8');
    for (const [command, flags] of Object.entries(PENDING_FLAGS))
      for (const f of flags) expect(doc, `docs/cluster.md names rackemu ${command} ${f}`).toContain(f);
    const args = coordinator.command!;
    expect(args[0]).toBe('serve');
    expect(flagValue(args, '--isolation')).toBe('remote');
    expect(flagValue(args, '--transport')).toBe('nats');
    const deployment = flagValue(args, '--deployment');
    const user = flagValue(args, '--nats-user');
    for (const [name, s] of hostServices) {
      expect(flagValue(s.command!, '--deployment'), name).toBe(deployment);
      expect(flagValue(s.command!, '--nats-user'), name).toBe(user);
      expect(s.environment?.RACKEMU_NATS_PASSWORD, name).toBe(ENV.RACKEMU_NATS_PASSWORD);
      for (const url of flagValue(s.command!, '--nats')!.split(','))
        expect(services[new URL(url).hostname], `${name}: ${url}`).toBeDefined();
    }
    expect(coordinator.environment?.RACKEMU_NATS_PASSWORD).toBe(ENV.RACKEMU_NATS_PASSWORD);
    // the NATS user of the command lines may use the deployment's subjects
    expect(NATS_SETTINGS).toContain(`user: ${user}`);
    expect(NATS_SETTINGS).toContain(`"rackemu.${deployment}.>"`);
  });

  it('one host-agent service per host the Plan needs, each under its own host name', () => {
    const topology = hostPath(coordinator, flagValue(coordinator.command!, '--topology')!);
    expect(topology && existsSync(topology), 'the topology is mounted from the repository').toBe(true);
    const planned = plannedHosts(coordinator.command!, topology!);
    const listed = hostServices.map(([, s]) => flagValue(s.command!, '--host-id'));
    expect([...listed].sort()).toEqual([...planned].sort());
    const names = hostServices.map(([, s]) => s.hostname);
    expect(new Set(names).size).toBe(names.length);
    for (const [name, s] of hostServices) expect(s.hostname, name).toBe(name);
  });

  it('Prometheus: promtool checks the config with the files compose mounts; it reads the coordinator’s file_sd', async () => {
    const prom = services.prometheus;
    const config = parse(readFileSync(hostPath(prom, '/etc/prometheus/prometheus.yml')!, 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; file_sd_configs?: { files: string[] }[] }[];
    };
    // file_sd: the coordinator writes into a named volume that Prometheus mounts, under a name its glob matches
    const sdFile = flagValue(coordinator.command!, '--metrics-file-sd')!;
    const mountOf = (s: Service, pred: (src: string, dst: string) => boolean) =>
      (s.volumes ?? []).map((v) => v.split(':')).find(([src, dst]) => pred(src, dst));
    const written = mountOf(coordinator, (src, dst) => /^\w/.test(src) && sdFile.startsWith(`${dst}/`));
    expect(written, `${sdFile}: not on a named volume`).toBeDefined();
    const mounted = mountOf(prom, (src) => src === written![0]);
    expect(mounted, `Prometheus does not mount volume ${written![0]}`).toBeDefined();
    const seenAt = `${mounted![1]}/${sdFile.slice(written![1].length + 1)}`;
    const globs = config.scrape_configs.flatMap((j) => j.file_sd_configs ?? []).flatMap((f) => f.files);
    const globRe = (g: string) => new RegExp(`^${g.replaceAll('.', '\\.').replaceAll('*', '[^/]*')}$`);
    expect(
      globs.some((g) => globRe(g).test(seenAt)),
      `no file_sd glob of ${globs.join(', ')} matches ${seenAt}`,
    ).toBe(true);
    // rule files: mounted from grafana/alerts
    for (const r of config.rule_files) {
      const dir = dirname(r);
      expect(
        [...bindMounts(prom).keys()].some((dst) => dirname(dst) === dir),
        `rule_files ${r}: nothing mounted`,
      ).toBe(true);
    }
    const promtool = findBinary('promtool');
    expect(promtool, 'promtool (Debian package prometheus: scripts/ensure-deps.sh)').toBeDefined();
    const tmp = await mkdtemp(join(tmpdir(), 'rackemu-compose-prom-'));
    try {
      // the container's file system as far as the config reads it: its bind mounts, under tmp
      for (const [dst, src] of bindMounts(prom)) {
        await mkdir(dirname(join(tmp, dst)), { recursive: true });
        await symlink(src, join(tmp, dst));
      }
      const text = readFileSync(hostPath(prom, '/etc/prometheus/prometheus.yml')!, 'utf8').replaceAll(
        '/etc/prometheus/',
        `${tmp}/etc/prometheus/`,
      );
      await writeFile(join(tmp, 'prometheus.yml'), text);
      const r = spawnSync(promtool!, ['check', 'config', join(tmp, 'prometheus.yml')], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/SUCCESS: 1 rule files found/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('Grafana: provisioning where Grafana reads it, dashboards where the provider looks, the datasource URL set', () => {
    const g = services.grafana;
    const mounts = bindMounts(g);
    expect(mounts.get('/etc/grafana/provisioning')).toBe(join(ROOT, 'grafana/provisioning'));
    const providerDir = join(ROOT, 'grafana/provisioning/dashboards');
    const paths = readdirSync(providerDir)
      .filter((f) => f.endsWith('.yaml'))
      .flatMap(
        (f) =>
          (parse(readFileSync(join(providerDir, f), 'utf8')) as { providers: { options: { path: string } }[] })
            .providers,
      )
      .map((p) => p.options.path);
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) {
      expect(mounts.get(p), `dashboards provider path ${p}`).toBe(join(ROOT, 'grafana/dashboards'));
      expect(statSync(mounts.get(p)!).isDirectory()).toBe(true);
    }
    const dsDir = join(ROOT, 'grafana/provisioning/datasources');
    for (const f of readdirSync(dsDir)) {
      const values = JSON.stringify(parse(readFileSync(join(dsDir, f), 'utf8'))); // comments aside
      for (const m of values.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g))
        expect(g.environment?.[m[1]], `${f} reads $${m[1]}`).toMatch(/^http:\/\/prometheus:9090$/);
    }
    expect(g.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(g.environment?.GF_SECURITY_ADMIN_PASSWORD).toBe(ENV.GRAFANA_ADMIN_PASSWORD);
  });
});

describe('deploy - compose NATS cluster (real nats-server processes)', () => {
  const NATS = ['nats-1', 'nats-2', 'nats-3'];
  const servers = new Map<string, NatsProcess>();
  const open: NatsConnection[] = [];
  let tmp = '';
  const user = flagValue(coordinator.command!, '--nats-user')!;
  const deployment = flagValue(coordinator.command!, '--deployment')!;
  const pass = ENV.RACKEMU_NATS_PASSWORD;
  const chipSubject = (dep: string) => `rackemu.${dep}.c.r0_n0_c0`;
  const connectAs = async (server: string, creds?: { user: string; pass: string }) => {
    const r = await natsConnect(servers.get(server)!.url, creds);
    if ('nc' in r) open.push(r.nc);
    return r;
  };

  const clusterPort = Number(/cluster\s*\{[^}]*?\bport:\s*(\d+)/.exec(NATS_SETTINGS)![1]);
  const ports = new Map<string, { port: number; monitorPort: number; cluster: number }>();
  /** nats/nats.conf as a service mounts it, its cluster port moved to 127.0.0.1:`cluster` (a copy in tmp). */
  const localConf = async (name: string, cluster: number) => {
    const s = services['nats-1'];
    const conf = hostPath(s, flagValue(s.command!.slice(1), '--config')!)!;
    const local = join(tmp, `${name}.conf`);
    const text = readFileSync(conf, 'utf8').replace(
      /(cluster\s*\{[^}]*?)\bport:\s*\d+/,
      `$1listen: 127.0.0.1:${cluster}`,
    );
    await writeFile(local, text);
    return local;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'rackemu-compose-nats-'));
    for (const n of NATS)
      ports.set(n, { port: await freePort(), monitorPort: await freePort(), cluster: await freePort() });
    // each service's command line as compose runs it, its hosts and ports mapped to this machine's:
    // the routes (and their password) from compose.yaml, everything else from nats/nats.conf
    const started = NATS.map(async (n) => {
      const s = services[n];
      const [bin, ...args] = s.command!;
      expect(bin).toBe('nats-server');
      expect(flagValue(args, '--config')).toBe(flagValue(services['nats-1'].command!.slice(1), '--config'));
      const p = ports.get(n)!;
      const routes = flagValue(args, '--routes')!
        .split(',')
        .map((r) => {
          const u = new URL(r);
          expect(NATS, `route ${u.hostname}: not a NATS service`).toContain(u.hostname);
          expect(Number(u.port)).toBe(clusterPort);
          u.port = String(ports.get(u.hostname)!.cluster);
          u.hostname = '127.0.0.1';
          return u.href;
        });
      expect(routes.length).toBe(3);
      const config = await localConf(n, p.cluster);
      return startNatsServer(
        [`--config=${config}`, `--name=${flagValue(args, '--name')}`, `--routes=${routes.join(',')}`],
        p,
        s.environment ?? {},
      );
    });
    const results = await Promise.allSettled(started);
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') servers.set(NATS[i], r.value);
    });
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  });

  afterAll(async () => {
    await Promise.all(open.map((nc) => nc.close().catch(() => undefined)));
    await Promise.all([...servers.values()].map((s) => s.stop()));
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('the three servers form a cluster over routes that present the route password; JetStream is off', async () => {
    for (const n of NATS) {
      const routez = await waitForRoutes(servers.get(n)!.monitorUrl, 2);
      expect(routez.num_routes, `${n}:\n${servers.get(n)!.log()}`).toBe(2);
      const varz = (await (await fetch(`${servers.get(n)!.monitorUrl}/varz`)).json()) as {
        jetstream?: { config?: unknown };
      };
      expect(varz.jetstream?.config, `${n}: JetStream`).toBeUndefined();
    }
    expect(NATS_SETTINGS).not.toMatch(/jetstream/);
  });

  it('a server whose routes present a wrong route password does not join', async () => {
    const p = { port: await freePort(), monitorPort: await freePort() };
    const config = await localConf('rogue', await freePort());
    const target = `nats://rackemu-route:not-the-password@127.0.0.1:${ports.get('nats-1')!.cluster}`;
    const rogue = await startNatsServer(
      [`--config=${config}`, '--name=rogue', `--routes=${target}`],
      p,
      services['nats-1'].environment ?? {},
    );
    try {
      await new Promise((r) => setTimeout(r, 1000));
      // the rogue retries its refused route every second, and a sample may catch one mid-handshake (seen under
      // load): a route that joined would show in every sample, a refused one leaves samples with none
      const samples: number[] = [];
      for (let i = 0; i < 25 && !samples.includes(0); i++) {
        samples.push((await waitForRoutes(rogue.monitorUrl, 1, 0)).num_routes);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(samples).toContain(0);
      expect((await waitForRoutes(servers.get('nats-1')!.monitorUrl, 3, 0)).num_routes).toBe(2);
    } finally {
      await rogue.stop();
    }
  });

  it('no anonymous access: no credentials, a wrong password or an unknown user are refused', async () => {
    const refused = [
      await connectAs('nats-1'),
      await connectAs('nats-2', { user, pass: 'not-the-password' }),
      await connectAs('nats-3', { user: 'rackemu-nobody', pass }),
    ];
    for (const r of refused) expect('refused' in r ? r.refused : 'connected').toMatch(/Authorization/i);
    expect(NATS_SETTINGS).not.toMatch(/no_auth_user/);
  });

  it("the deployment's user reaches its chip and control subjects across the cluster", async () => {
    const a = await connectAs('nats-1', { user, pass });
    const b = await connectAs('nats-3', { user, pass });
    if (!('nc' in a) || !('nc' in b)) throw new Error(`refused: ${JSON.stringify([a, b])}`);
    expect(await deliver(a.nc, b.nc, chipSubject(deployment))).toBe('hello');
    expect(await deliver(b.nc, a.nc, `rackemu.${deployment}.ctl.join`)).toBe('hello');
    expect(await permissionViolations(a.nc, chipSubject(deployment))).toEqual([]);
  });

  it("the deployment's user can neither publish into nor subscribe to another deployment's subjects", async () => {
    const a = await connectAs('nats-2', { user, pass });
    if (!('nc' in a)) throw new Error(a.refused);
    const violations = await permissionViolations(a.nc, chipSubject('other'));
    expect(violations.length, violations.join('\n')).toBe(2);
    expect(violations.join('\n')).toMatch(/Publish/i);
    expect(violations.join('\n')).toMatch(/Subscription/i);
    expect((await permissionViolations(a.nc, 'rackemu.>')).length).toBe(2);
  });
});
