import type { CompletionEngine, CompletionRequest, CompletionResult, TokenEvent } from '../control/engine-types.js';

/**
 * The engine as the server sees it while the deployment starts: the server listens at once (so
 * /healthz answers and /ready says 503 while hundreds of chips load), and the real engine is
 * attached once the chips are up. What the routes validate against (model name, vocabulary,
 * context, fidelity) is known from the Plan before that.
 */
export class LateEngine implements CompletionEngine {
  private inner: CompletionEngine | null = null;

  constructor(
    readonly modelName: string,
    readonly fidelity: 'numeric' | 'timing',
    readonly vocab: number,
    readonly context: number,
  ) {}

  attach(engine: CompletionEngine): void {
    if (engine.modelName !== this.modelName || engine.vocab !== this.vocab || engine.context !== this.context) {
      throw new Error(
        `internal: the engine serves ${engine.modelName} (vocab ${engine.vocab}, context ${engine.context}), the server was set up for ${this.modelName} (vocab ${this.vocab}, context ${this.context})`,
      );
    }
    this.inner = engine;
  }

  get ready(): boolean {
    return this.inner?.ready ?? false;
  }
  get running(): number {
    return this.inner?.running ?? 0;
  }
  get waiting(): number {
    return this.inner?.waiting ?? 0;
  }

  submit(request: CompletionRequest, onToken?: (e: TokenEvent) => void): Promise<CompletionResult> {
    // the routes check `ready` first and answer 503 before this
    if (!this.inner) return Promise.reject(new Error('internal: request submitted before the engine started'));
    return this.inner.submit(request, onToken);
  }

  cancel(requestId: string): void {
    this.inner?.cancel(requestId);
  }

  drain(): Promise<void> {
    return this.inner?.drain() ?? Promise.resolve();
  }
}
