// Hostile text in reports, in headless Chromium: a `<script>` and an `<img onerror>` sent
// as the OS name, OS version and EMQX version run on no console page, add no element, and
// show as the literal text that was sent where the console names the platform.
import { launch, required, check } from './lib.mjs';

const base = required('CONSOLE_URL');
const password = required('ADMIN_PASSWORD');
const hostile = required('HOSTILE_TEXT');

const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/console/login`);
  await page.fill('#username', 'admin');
  await page.fill('#password', password);
  await Promise.all([page.waitForURL('**/console/overview**'), page.click('#login-button')]);

  const pages = await page.locator('nav a[href^="/console/"]').evaluateAll((links) =>
    [...new Set(links.map((a) => new URL(a.href).pathname))]);
  check(pages.length >= 7, `the navigation lists every page: ${pages}`);
  const shown = {};
  for (const path of pages) {
    await page.goto(`${base}${path}`, { waitUntil: 'load' });
    const found = await page.evaluate((text) => ({
      pwned: window.__pwned,
      scripts: [...document.scripts].filter((s) => s.textContent.includes('__pwned')).length,
      images: document.querySelectorAll('img[onerror]').length,
      optionText: [...document.querySelectorAll('#filter-os option')].some((o) => o.textContent === text),
    }), hostile);
    check(found.pwned === undefined, `${path}: the sent script ran (window.__pwned = ${found.pwned})`);
    check(found.scripts === 0 && found.images === 0, `${path}: the sent markup became elements: ${JSON.stringify(found)}`);
    check(found.optionText, `${path}: the OS filter offers the sent name as text`);
    shown[path] = await page.getByText('<script>window.__pwned=1').filter({ visible: true }).count();
  }
  check(shown['/console/platforms'] >= 2, `the platforms page shows the OS and its version as text: ${JSON.stringify(shown)}`);
  console.log(`hostile text shown as text: ${JSON.stringify(shown)}`);
} finally {
  await browser.close();
}
