import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (installed by scripts/setup.sh); QY_CHROMIUM to use another. */
export const CHROMIUM_PATH = process.env.QY_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags for a headless Chromium on a closed network: without the background-networking ones it keeps trying
 * to reach Google's services, and on this machine those connections are refused (slow starts, noisy logs).
 */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** A Chromium with a fresh profile (its own --user-data-dir, removed on close), for the console's tests and benchmark. */
export interface LocalBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Starts Chromium headless at 1280×800 in `locale` (the console picks its language from it). */
export async function launchChromium(options: { locale?: string } = {}): Promise<LocalBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'qy-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    locale: options.locale ?? 'en-US',
    acceptDownloads: true,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
