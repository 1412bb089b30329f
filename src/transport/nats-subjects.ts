/**
 * The NATS subjects of a run's chips.
 *
 * Subjects (chip ids have dots, which NATS reads as token separators, so '.' becomes '_'):
 *   rackemu.<runId>.c.<chip>   frames and chunks for <chip>; each message's reply field names the
 *                              sender's credit subject, which is how the receiver knows whom to credit
 *   rackemu.<runId>.k.<chip>   credit grants for <chip> as a sender; the reply field names the granting
 *                              receiver's data subject, which keys the sender's per-destination state
 */

import { configError } from './errors.js';

const CHIP_ID = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$/;
const RUN_ID = /^[A-Za-z0-9-]+$/;

/** Throws a config error unless `runId` can be a subject token. */
export function checkRunId(runId: string): void {
  if (!RUN_ID.test(runId))
    throw configError(`run id ${JSON.stringify(runId)} must be letters, digits and '-'`, { got: runId });
}

/** The subject token of a chip id ('.' -> '_'); chip ids are restricted so this is reversible. */
export function chipToken(chipId: string): string {
  if (!CHIP_ID.test(chipId)) {
    throw configError(
      `chip id ${JSON.stringify(chipId)} is not usable on NATS (letters, digits, '-', separated by '.')`,
      { got: chipId },
    );
  }
  return chipId.replaceAll('.', '_');
}

export function dataSubject(runId: string, chipId: string): string {
  return `rackemu.${runId}.c.${chipToken(chipId)}`;
}

export function creditSubject(runId: string, chipId: string): string {
  return `rackemu.${runId}.k.${chipToken(chipId)}`;
}

/** The chip whose credit subject `subject` is (a frame's reply field), or `subject` itself if it is none. */
export function chipOfCreditSubject(runId: string, subject: string): string {
  const prefix = `rackemu.${runId}.k.`;
  return subject.startsWith(prefix) ? subject.slice(prefix.length).replaceAll('_', '.') : subject;
}
