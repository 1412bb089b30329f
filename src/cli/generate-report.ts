import type { GenerateResult } from '../control/deployment.js';

/**
 * `rackemu generate --json`: the run's result in the CLI's snake_case JSON (a stable, documented
 * shape that scripts read), mapped from the coordinator's camelCase GenerateResult.
 */
export interface GenerateJson {
  readonly tokens: number[] | null;
  readonly generated: number;
  readonly final_logits: number[] | null;
  readonly virtual: {
    readonly ttft_ms: number;
    readonly tpot_ms: number;
    readonly tokens_per_s_per_user: number;
    readonly ticks: number[];
  };
  readonly wall: { readonly startup_s: number; readonly run_s: number; readonly per_token_ms: number };
  readonly messages: GenerateMessagesJson;
  readonly violations: GenerateResult['violations'];
  readonly chips: GenerateResult['chips'];
}

export interface GenerateMessagesJson {
  readonly count: number;
  readonly bytes: number;
  readonly transport_messages: number;
  readonly transport_bytes: number;
  readonly decoded: number;
  readonly credit_stalls: number;
  readonly sleeps: number;
}

export function messagesJson(m: GenerateResult['messages']): GenerateMessagesJson {
  return {
    count: m.frames,
    bytes: m.bytes,
    transport_messages: m.transportMessages,
    transport_bytes: m.transportBytes,
    decoded: m.decoded,
    credit_stalls: m.creditStalls,
    sleeps: m.sleeps,
  };
}

export function generateJson(r: GenerateResult): GenerateJson {
  return {
    tokens: r.tokens,
    generated: r.generated,
    final_logits: r.finalLogits,
    virtual: {
      ttft_ms: r.virtual.ttftMs,
      tpot_ms: r.virtual.tpotMs,
      tokens_per_s_per_user: r.virtual.tokensPerSecondPerUser,
      ticks: r.virtual.ticks,
    },
    wall: { startup_s: r.wall.startupSeconds, run_s: r.wall.runSeconds, per_token_ms: r.wall.perTokenMs },
    messages: messagesJson(r.messages),
    violations: r.violations,
    chips: r.chips,
  };
}
