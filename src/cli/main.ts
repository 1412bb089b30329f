import { Command, CommanderError } from 'commander';
import { ERRORS, isRackemuError } from '../util/errors.js';
import { logger, setLogLevel } from '../util/log.js';
import { compileCommand } from './compile.js';
import { experimentCommand } from './experiment.js';
import { generateCommand } from './generate.js';
import { hostCommand } from './host.js';
import { serveCommand } from './serve.js';
import { sweepCommand } from './sweep.js';

/**
 * `rackemu <command>`: returns the exit status instead of exiting, so tests can call it in-process.
 * Errors print one line `rackemu: <CODE>: <message>` (plus indented details) on stderr.
 */
export async function main(
  argv: string[],
  io = { out: (s: string) => void process.stdout.write(s), err: (s: string) => void process.stderr.write(s) },
): Promise<number> {
  const program = new Command('rackemu')
    .description('Emulator of a Groq-style LPU inference deployment')
    .option('--verbose', 'log progress (JSON lines on stderr)')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .hook('preAction', (cmd) => {
      if (cmd.opts().verbose) setLogLevel('info');
    });
  compileCommand(program, io.out);
  generateCommand(program, io.out);
  serveCommand(program, io.out);
  hostCommand(program);
  experimentCommand(program, io.out);
  sweepCommand(program, io.out);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander
      return e.exitCode === 0 ? 0 : ERRORS.RACKEMU_ERR_USAGE.exitCode;
    }
    if (isRackemuError(e)) {
      io.err(`rackemu: ${e.code}: ${e.message}\n`);
      logger().debug({ err: e }, 'command failed');
      return e.exitCode;
    }
    io.err(`rackemu: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 70;
  }
}
