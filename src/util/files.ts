import { renameSync, writeFileSync, rmSync } from 'node:fs';
import { RackemuError } from './errors.js';

/** Writes a file whole or not at all: a temporary sibling, then an atomic rename. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw new RackemuError('RACKEMU_ERR_FILE_WRITE', `${file}: cannot write (${(cause as Error).message})`, {
      cause,
      details: { file },
    });
  }
}
