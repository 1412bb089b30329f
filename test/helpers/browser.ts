import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's chromium (scripts/ensure-deps.sh installs it), driven by playwright-core: no browser is
 * downloaded. RACKEMU_CHROMIUM names another executable.
 */
export function chromiumPath(): string {
  const path = process.env.RACKEMU_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(path))
    throw new Error(`no chromium at ${path}: run scripts/ensure-deps.sh (or set RACKEMU_CHROMIUM)`);
  return path;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true });
}
