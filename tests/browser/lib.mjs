// Shared launcher for Beacon's browser checks: Debian's Chromium, headless, with the
// background networking switched off so that nothing leaves the machine.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// Screenshots are test artifacts: kept under artifacts/screenshots for a person to look at.
export function screenshotPath(name) {
  const dir = process.env.SCREENSHOT_DIR || 'artifacts/screenshots';
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}.png`);
}

export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// What a page reports going wrong while a check drives it: script errors and console
// errors (a resource that failed to load is one, the browser's own favicon request
// included). A check ends with `check(problems.length === 0, ...)`.
export function recordProblems(page, problems = []) {
  page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error at ${page.url()}: ${message.text()}`);
  });
  return problems;
}
