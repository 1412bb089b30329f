import { randomBytes } from 'node:crypto';
import { createEmbeddedFabric } from '../transport/embedded.js';
import { RunError, UsageError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { chipInit, deployedChips, schedulePairs } from './chip-inits.js';
import { LocalHost, RemoteHost } from './host.js';
import { fromWireError } from './host-agent.js';
export class Deployment {
    plan;
    fabric;
    hosts;
    opts;
    startupSeconds;
    workerCount;
    constructor(plan, fabric, hosts, opts, startupSeconds, workerCount) {
        this.plan = plan;
        this.fabric = fabric;
        this.hosts = hosts;
        this.opts = opts;
        this.startupSeconds = startupSeconds;
        this.workerCount = workerCount;
    }
    /** Steps run so far on this deployment: the next run continues the step numbering. */
    stepsRun = 0;
    /** Index the next run's first step will have (fault targets name steps on this timeline). */
    get nextStep() {
        return this.stepsRun;
    }
    static async start(plan, fabric, opts) {
        if (opts.isolation === 'process' && opts.transport === 'embedded') {
            throw new UsageError('RACKEMU_ERR_GENERATE_OPTION', '--isolation process needs --transport nats: the embedded transport connects threads of one process only', {
                details: { expected: '--transport nats', got: '--transport embedded' },
            });
        }
        if (opts.transport === 'nats' && !opts.natsUrl) {
            throw new UsageError('RACKEMU_ERR_GENERATE_OPTION', '--transport nats needs --nats-url nats://host:port or --nats spawn', { details: { expected: 'a NATS url' } });
        }
        const t0 = performance.now();
        const chips = deployedChips(plan, fabric);
        const runId = `run-${randomBytes(4).toString('hex')}`;
        const embedded = opts.transport === 'embedded' ? createEmbeddedFabric(schedulePairs(plan, fabric), chips.map((c) => fabric.chipId(c))) : null;
        const byHost = new Map();
        for (const chip of chips) {
            const init = chipInit(plan, fabric, chip, { fidelity: opts.fidelity, watchdogMs: opts.watchdogMs });
            let transport;
            let transferList = [];
            if (embedded) {
                const e = embedded.endpointConfig(init.chipId);
                transport = e.config;
                transferList = e.transferList;
            }
            else {
                transport = { kind: 'nats', servers: opts.natsUrl, runId };
            }
            const hostId = fabric.hostId(chip);
            const list = byHost.get(hostId) ?? [];
            list.push({ init, transport, transferList });
            byHost.set(hostId, list);
        }
        const hosts = [...byHost.entries()].map(([hostId, list]) => opts.isolation === 'process' ? new RemoteHost(hostId, list, opts.model) : new LocalHost(hostId, list, opts.weights));
        let ready = 0;
        opts.onProgress?.(0, chips.length);
        try {
            await Promise.all(hosts.map((h) => h.load(() => opts.onProgress?.(++ready, chips.length))));
        }
        catch (e) {
            await Promise.allSettled(hosts.map((h) => h.stop()));
            throw e;
        }
        const startup = (performance.now() - t0) / 1000;
        logger().info({ chips: chips.length, hosts: hosts.length, startup_s: startup, transport: opts.transport, isolation: opts.isolation }, 'deployment ready');
        return new Deployment(plan, fabric, hosts, opts, startup, chips.length);
    }
    async generate(spec) {
        const P = spec.promptIds.length;
        if (P === 0 || spec.maxNewTokens < 1 || P + spec.maxNewTokens > this.plan.options.context) {
            throw new UsageError('RACKEMU_ERR_GENERATE_OPTION', `prompt of ${P} tokens plus ${spec.maxNewTokens} new tokens must be >= 1 each and fit the plan's context of ${this.plan.options.context}`, {
                details: { expected: `1 <= prompt + new <= ${this.plan.options.context}`, got: `${P} + ${spec.maxNewTokens}` },
            });
        }
        const bad = spec.promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= this.plan.model.vocab);
        if (bad !== undefined) {
            throw new UsageError('RACKEMU_ERR_GENERATE_OPTION', `prompt id ${bad} is outside the vocabulary [0, ${this.plan.model.vocab})`, { details: { got: String(bad) } });
        }
        const t0 = performance.now();
        const run = { ...spec, stepOffset: this.stepsRun };
        this.stepsRun += Math.ceil(P / this.plan.options.prefillChunk) + spec.maxNewTokens - 1;
        const outcomes = (await Promise.all(this.hosts.map((h) => h.run(run)))).flat();
        const failures = outcomes.filter((o) => o.error !== null);
        if (failures.length > 0)
            throw rootCause(failures, outcomes);
        const done = outcomes.filter((o) => o.error === null);
        const runSeconds = (performance.now() - t0) / 1000;
        const sampler = done.find((o) => o.result.tokenTicks !== null).result;
        const ticks = sampler.tokenTicks;
        const wallMs = sampler.tokenWallMs;
        const hz = this.plan.topology.chip.clock_mhz * 1e6;
        const ttft = ticks[0] / hz;
        const tpot = ticks.length > 1 ? (ticks[ticks.length - 1] - ticks[0]) / (ticks.length - 1) / hz : this.plan.steps.decode.lengthTicks / hz;
        const perTokenWall = wallMs.length > 1 ? (wallMs[wallMs.length - 1] - wallMs[0]) / (wallMs.length - 1) : runSeconds * 1000;
        let finalLogits = null;
        if (this.opts.fidelity === 'numeric') {
            const lmChips = new Set(this.plan.layout.lmHead.map((s) => this.fabric.chipId(s.chip)));
            const full = new Float32Array(this.plan.model.vocab);
            for (const h of this.hosts) {
                const mine = done.filter((o) => lmChips.has(o.chipId) && this.fabric.hostId(this.fabric.chipIndex(o.chipId)) === h.hostId);
                if (mine.length === 0)
                    continue;
                for (const l of await h.readback(mine.map((o) => o.chipId)))
                    if (l.logits)
                        full.set(l.logits, l.start);
            }
            finalLogits = Array.from(full);
        }
        return {
            tokens: sampler.tokens,
            generated: ticks.length,
            final_logits: finalLogits,
            virtual: { ttft_ms: ttft * 1000, tpot_ms: tpot * 1000, tokens_per_s_per_user: 1 / tpot, ticks },
            wall: { startup_s: this.startupSeconds, run_s: runSeconds, per_token_ms: perTokenWall },
            messages: {
                count: done.reduce((s, o) => s + o.result.framesSent, 0),
                bytes: done.reduce((s, o) => s + o.result.bytesSent, 0),
                transport_bytes: done.reduce((s, o) => s + o.transport.bytesSent, 0),
                credit_stalls: done.reduce((s, o) => s + o.transport.creditStalls, 0),
            },
            violations: done.flatMap((o) => o.result.violations),
            chips: { workers: this.workerCount, hosts: this.hosts.length, used: this.plan.programs.size },
        };
    }
    async stop() {
        await Promise.allSettled(this.hosts.map((h) => h.stop()));
    }
}
/**
 * One failed run, many failed chips: once a frame goes missing, every chip downstream of it stalls
 * and its watchdog fires too. The root cause is a failure that is not a stall (a corrupt frame, a
 * crashed worker), else the missing frame that was due earliest in virtual time.
 */
function rootCause(failures, all) {
    const dueTick = (o) => (o.error?.details.violation?.tick ?? -1);
    const notStall = failures.filter((o) => o.error?.code !== 'RACKEMU_ERR_WATCHDOG');
    const root = notStall[0] ?? failures.reduce((a, b) => (dueTick(b) < dueTick(a) ? b : a));
    const others = failures.length - 1;
    const e = root.error;
    const suffix = others > 0 ? ` (${others} other chip(s) stalled behind it)` : '';
    const violations = [
        ...failures.map((o) => o.error?.details.violation).filter((v) => v !== undefined),
        ...all.flatMap((o) => o.result?.violations ?? []),
    ];
    return new RunError(fromWireError(e).code, `${e.message}${suffix}`, { details: { ...e.details, chip: root.chipId, violations } });
}
//# sourceMappingURL=deployment.js.map