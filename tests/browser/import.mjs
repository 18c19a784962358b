// The console's "Import reports" form in headless Chromium: an admin follows the link in
// the navigation, uploads a mixed NDJSON file, sees how many reports were stored, replaced
// and refused (with each refused line and its reason), and the overview's week in
// progress counts the imported nodes.
import { launch, screenshotPath, required, check } from './lib.mjs';

const base = required('CONSOLE_URL');
const password = required('ADMIN_PASSWORD');
const file = required('IMPORT_FILE');
const before = required('NODES_BEFORE');
const after = required('NODES_AFTER');
const shot = (name) => screenshotPath(`console-import-${name}`);

// The "so far" counts of the overview's week in progress, one per line of the chart.
async function soFar(page) {
  await page.goto(`${base}/console/overview`);
  const titles = await page
    .locator('svg.chart[data-chart="overview-activity"] circle.point.partial title')
    .allTextContents();
  check(titles.length === 2, `two lines end in the week in progress: ${titles}`);
  return titles.map((title) => title.replace(/^.*\(so far\): /, ''));
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await page.fill('#username', 'admin');
  await page.fill('#password', password);
  await Promise.all([page.waitForURL('**/console/overview**'), page.click('#login-button')]);
  const counted = await soFar(page);
  check(counted.every((n) => n === before), `before the import, so far: ${counted}`);

  await Promise.all([page.waitForURL('**/console/import'), page.click('#nav-import')]);
  await page.setInputFiles('#import-file', file);
  await page.screenshot({ path: shot('form') });
  await Promise.all([page.waitForLoadState('load'), page.click('#import-button')]);
  await page.waitForSelector('#import-summary');
  await page.screenshot({ path: shot('summary'), fullPage: true });
  const text = async (selector) => (await page.textContent(selector)).trim();
  check((await text('#import-accepted')) === '3', `accepted: ${await text('#import-summary')}`);
  check((await text('#import-stored')) === '2', `stored: ${await text('#import-stored')}`);
  check((await text('#import-replaced')) === '1', `replaced: ${await text('#import-replaced')}`);
  check((await text('#import-refused-count')) === '2', `refused: ${await text('#import-refused-count')}`);
  const refused = await page.locator('#import-refused tr').evaluateAll((rows) =>
    rows.slice(1).map((row) => [...row.cells].map((cell) => cell.textContent)));
  check(refused.length === 2, `one row per refused report: ${JSON.stringify(refused)}`);
  check(refused[0][0] === '2' && refused[0][1] === 'INVALID_FIELD' && /uuid/.test(refused[0][2]),
    `line 2 is refused for its uuid's type: ${JSON.stringify(refused[0])}`);
  check(refused[1][0] === '4' && refused[1][1] === 'MALFORMED_JSON',
    `line 4 is refused as malformed JSON: ${JSON.stringify(refused[1])}`);

  const now = await soFar(page);
  check(now.every((n) => n === after), `after the import, so far: ${now}`);
  await page.screenshot({ path: shot('overview'), fullPage: true });
  console.log(`imported: so far ${counted} -> ${now}; refused ${JSON.stringify(refused)}`);
} finally {
  await browser.close();
}
