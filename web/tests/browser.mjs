// What the browser tests share: their environment, Debian's Chromium (driven by playwright-core)
// on a profile of its own, screenshots, and opening a dashboard page once it is live.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Logs to stderr: stdout is the channel to the Rust test. */
export function logger(name) {
  return (...args) => console.error(`[${name}]`, ...args);
}

/**
 * Chromium on a fresh profile (playwright passes it as --user-data-dir), so no state is left
 * from earlier runs; `close()` also removes the profile. CHROMIUM overrides the executable.
 */
export async function launch() {
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  check(existsSync(executablePath), `no Chromium at ${executablePath}: install it with \`apt-get install -y chromium\``);
  const profile = mkdtempSync(join(tmpdir(), 'conftools-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** `shot(page, name)`: a full-page screenshot `name.png` in `dir`. */
export function screenshots(dir, log) {
  mkdirSync(dir, { recursive: true });
  return async (page, name) => {
    const path = join(dir, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    log('screenshot', path);
  };
}

/** Opens `url` in a new tab and waits until the page's live connection is up. */
export async function open(context, url, log) {
  const page = await context.newPage();
  page.on('pageerror', (error) => log('page error:', error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') log('console:', message.text());
  });
  await page.goto(url);
  await page.locator('[data-testid="connection"][data-state="live"]').waitFor({ timeout: 15_000 });
  return page;
}
