import { spawn, type ChildProcess } from 'node:child_process';

/** A child process of a test, with what it printed. */
export interface Proc {
  readonly child: ChildProcess;
  /** Its exit, with everything it wrote on stdout and stderr. */
  readonly done: Promise<{ code: number | null; out: string; err: string }>;
  /** What it wrote on stderr so far. */
  stderr(): string;
}

/** Starts `argv` (argv[0] is the program) with `env` added to this process's environment. */
export function startProcess(argv: readonly string[], env: Record<string, string> = {}): Proc {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, out, err })),
  );
  return { child, done, stderr: () => err };
}
