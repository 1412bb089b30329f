import { spawnSync } from 'node:child_process';

/**
 * Hosts for multi-host tests on this machine: Linux network namespaces, each with a veth pair into one
 * bridge and an address of a private /24 that only these namespaces use. Nothing is routed out of the
 * bridge (it has no address and no uplink), so the test's traffic never leaves its own namespaces.
 * Everything is removed by `destroy()`, which also runs when the process exits or is interrupted.
 */
export interface NetnsHost {
  readonly name: string;
  readonly address: string;
}

export interface NetnsLab {
  readonly hosts: readonly NetnsHost[];
  /** argv prefix that runs a command inside host `i`'s namespace. */
  exec(i: number): string[];
  destroy(): void;
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()} (network namespaces need root and iproute2)`);
  }
}

export function createNetnsLab(count: number): NetnsLab {
  const tag = (process.pid % 10000).toString(36);
  // 10.233.<n>.0/24: private, and used by nothing but these namespaces (the bridge has no address)
  const subnet = `10.233.${process.pid % 250}`;
  const bridge = `rkm${tag}br`;
  const hosts: NetnsHost[] = [];
  const made: (() => void)[] = [];
  const destroy = () => {
    for (const undo of made.splice(0).reverse()) {
      try {
        undo();
      } catch {
        // already gone
      }
    }
  };
  const onExit = () => destroy();
  process.once('exit', onExit);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => (destroy(), process.exit(130)));
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    made.push(() => ip('link', 'del', bridge));
    ip('link', 'set', bridge, 'up');
    for (let i = 0; i < count; i++) {
      const ns = `rkm${tag}ns${i}`;
      const inner = `rkm${tag}h${i}`;
      const outer = `rkm${tag}p${i}`;
      ip('netns', 'add', ns);
      made.push(() => ip('netns', 'del', ns));
      ip('link', 'add', inner, 'type', 'veth', 'peer', 'name', outer);
      made.push(() => ip('link', 'del', outer));
      ip('link', 'set', outer, 'master', bridge);
      ip('link', 'set', outer, 'up');
      ip('link', 'set', inner, 'netns', ns);
      const address = `${subnet}.${10 + i}`;
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${address}/24`, 'dev', inner);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', inner, 'up');
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      hosts.push({ name: ns, address });
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    hosts,
    exec: (i) => ['ip', 'netns', 'exec', hosts[i].name],
    destroy: () => {
      destroy();
      process.removeListener('exit', onExit);
    },
  };
}
