// The collector console in headless Chromium: log in, the overview shows the expected
// headline numbers (complete weeks only) and draws the week in progress as "so far",
// charts have data points, the date range and a filter change the
// charts and the URL, and exports download and parse. Screenshots are artifacts.
import { readFile } from 'node:fs/promises';
import { launch, screenshotPath, required, check, recordProblems } from './lib.mjs';

const base = required('CONSOLE_URL');
const password = required('ADMIN_PASSWORD');
const expected = {
  clusters: required('EXPECTED_CLUSTERS'),
  nodes: required('EXPECTED_NODES'),
  'new-nodes': required('EXPECTED_NEW_NODES'),
};
const shot = (name) => screenshotPath(`console-${name}`);

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = recordProblems(page);
  await page.goto(`${base}/console/overview`);
  check(page.url().includes('/console/login'), `an anonymous visit lands on the login page: ${page.url()}`);
  await page.fill('#username', 'admin');
  await page.fill('#password', password);
  await page.screenshot({ path: shot('login') });
  await Promise.all([page.waitForURL('**/console/overview**'), page.click('#login-button')]);

  for (const [id, value] of Object.entries(expected)) {
    const shown = (await page.textContent(`#headline-${id} .value`)).trim();
    check(shown === value, `headline ${id}: expected ${value}, shown ${shown}`);
  }
  const overviewPoints = await page.locator('svg.chart .point').count();
  check(overviewPoints > 0, `the overview chart has data points (${overviewPoints})`);
  check(/in progress/.test(await page.textContent('#headline-partial')), 'the headlines say the week in progress is left out');

  // The week in progress: each line's last point is hollow, reached by a dashed segment,
  // and the week is labelled "so far"; the point before it is an ordinary one.
  const overviewChart = page.locator('svg.chart[data-chart="overview-activity"]');
  const points = await overviewChart.locator('circle.point').evaluateAll((circles) => circles.map((c) => ({
    partial: c.classList.contains('partial'),
    fill: getComputedStyle(c).fill,
    title: c.querySelector('title').textContent,
  })));
  const lines = 2;
  const perLine = points.length / lines;
  for (let line = 1; line <= lines; line++) {
    const last = points[line * perLine - 1];
    const before = points[line * perLine - 2];
    check(last.partial && last.fill === 'rgb(255, 255, 255)', `the last point is hollow: ${JSON.stringify(last)}`);
    check(/\(so far\): \d/.test(last.title), `the last point says "so far": ${last.title}`);
    check(!before.partial && before.fill !== 'rgb(255, 255, 255)', `the week before is complete: ${JSON.stringify(before)}`);
  }
  check((await overviewChart.locator('polyline.partial[stroke-dasharray]').count()) === lines, 'each line ends dashed');
  const label = (await overviewChart.locator('.partial-week text').textContent()).trim();
  check(label === 'so far', `the week in progress is labelled: ${label}`);
  const hover = await page.locator('svg.chart .point title').first().textContent();
  check(/week of \d{4}-\d{2}-\d{2}: \d/.test(hover), `a data point shows its value on hover: ${hover}`);
  await page.screenshot({ path: shot('overview'), fullPage: true });

  await Promise.all([page.waitForURL('**/console/versions**'), page.click('nav a[href^="/console/versions"]')]);
  const chart = () => page.locator('svg.chart[data-chart="versions"]').innerHTML();
  const before = await chart();
  const pointsBefore = await page.locator('svg.chart[data-chart="versions"] .point').count();
  check(pointsBefore > 0, 'the versions chart has data points');
  await page.screenshot({ path: shot('versions'), fullPage: true });

  // Date range: the last four weeks of the current range.
  const to = await page.inputValue('#filter-to');
  const from = new Date(Date.parse(to) - 27 * 86400000).toISOString().slice(0, 10);
  await page.fill('#filter-from', from);
  await Promise.all([page.waitForURL(`**from=${from}**`), page.click('#apply-filters')]);
  check(page.url().includes(`from=${from}`) && page.url().includes(`to=${to}`), `the URL keeps the range: ${page.url()}`);
  const pointsRange = await page.locator('svg.chart[data-chart="versions"] .point').count();
  check(pointsRange > 0 && pointsRange < pointsBefore, `a shorter range draws fewer bars (${pointsRange} < ${pointsBefore})`);
  check((await page.inputValue('#filter-from')) === from, 'the picker shows the chosen range after reload');

  // Filter: the first OS of the list.
  const os = await page.locator('#filter-os option').nth(1).getAttribute('value');
  await page.selectOption('#filter-os', os);
  await Promise.all([page.waitForURL('**os=**'), page.click('#apply-filters')]);
  const url = new URL(page.url());
  check(url.searchParams.get('os') === os && url.searchParams.get('from') === from, `the URL keeps filter and range: ${page.url()}`);
  const filtered = await chart().catch(() => '');
  check(filtered !== before, 'the OS filter changed the chart');
  check((await page.inputValue('#filter-os')) === os, 'the OS filter stays selected');
  await page.screenshot({ path: shot('versions-filtered'), fullPage: true });

  // Navigation keeps the filters.
  await Promise.all([page.waitForURL('**/console/hardware**'), page.click('nav a[href^="/console/hardware"]')]);
  check(new URL(page.url()).searchParams.get('os') === os, 'navigation keeps the filters');
  await page.screenshot({ path: shot('hardware'), fullPage: true });

  // Exports: the aggregate of a chart, then the raw reports, as downloads that parse.
  const [aggregate] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('section.card a', { hasText: 'CSV' }).first().click(),
  ]);
  const aggregateCsv = await readFile(await aggregate.path(), 'utf8');
  const aggregateLines = aggregateCsv.trim().split('\r\n');
  check(aggregateLines[0] === 'dimension,value,cluster_weeks,share', `hardware CSV header: ${aggregateLines[0]}`);
  check(aggregateLines.length > 1, 'the hardware export has rows');

  await page.goto(`${base}/console/activity`);
  const [raw] = await Promise.all([page.waitForEvent('download'), page.locator('a.raw-export').first().click()]);
  check(raw.suggestedFilename().startsWith('beacon-reports-'), `download name: ${raw.suggestedFilename()}`);
  const rawCsv = await readFile(await raw.path(), 'utf8');
  const rawLines = rawCsv.trim().split('\r\n');
  check(rawLines[0].startsWith('day,uuid,cluster_uuid,received_at,emqx_version'), `raw CSV header: ${rawLines[0]}`);
  check(rawLines.length > 10, `the raw export has reports (${rawLines.length - 1})`);
  const lastField = rawLines[1].slice(rawLines[1].indexOf(',"{') + 2, -1).replaceAll('""', '"');
  check(JSON.parse(lastField).uuid !== undefined, 'the report column is the report JSON');
  await page.screenshot({ path: shot('activity'), fullPage: true });

  for (const name of ['platforms', 'features', 'workload']) {
    await page.goto(`${base}/console/${name}`);
    check((await page.locator('svg.chart .point').count()) > 0, `${name} has data points`);
    await page.screenshot({ path: shot(name), fullPage: true });
  }

  await Promise.all([page.waitForURL('**/console/login**'), page.click('#logout')]);
  await page.goto(`${base}/console/overview`);
  check(page.url().includes('/console/login'), 'after logout the pages need a login again');
  check(problems.length === 0, `no page reported an error:\n${problems.join('\n')}`);
  console.log('console browser check passed');
} finally {
  await browser.close();
}
