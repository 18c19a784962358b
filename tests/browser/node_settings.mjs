// The broker dashboard's Settings page in headless Chromium: log in, switch telemetry
// off, see it in the page and in the API, reload, still off; "Delete my data" asks first.
// The overview lists the node (NODE_NAME) as running.
// With LOCKED_BY set, the toggle must be disabled and say why.
import { launch, screenshotPath, required, check, recordProblems } from './lib.mjs';

const base = required('BASE_URL');
const password = required('ADMIN_PASSWORD');
const lockedBy = process.env.LOCKED_BY || '';
const nodeName = required('NODE_NAME');
const shot = (name) => screenshotPath(`node-${lockedBy ? 'locked-' : ''}${name}`);

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const problems = recordProblems(page);
  await page.goto(base);
  await page.fill('#username', 'admin');
  await page.fill('#password', password);
  await page.screenshot({ path: shot('login') });
  await page.click('#login-button');
  await page.waitForSelector('#overview-view:not([hidden])');
  await page.waitForFunction(() => document.getElementById('ov-clients').textContent !== '–');
  await page.waitForFunction(() => document.querySelector('#nodes tr.node-running'));
  const nodes = await page.$$eval('#nodes tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  check(nodes.length === 1 && nodes[0][0] === nodeName && nodes[0][1] === 'running',
    `the overview lists this node alone, running: ${JSON.stringify(nodes)}`);
  await page.screenshot({ path: shot('overview') });
  // Before the refused forget below, whose failed request is meant to happen.
  check(problems.length === 0, `the dashboard reported no error:\n${problems.join('\n')}`);

  await page.click('#nav-settings');
  await page.waitForFunction(() => document.getElementById('telemetry-preview').textContent.includes('emqx_version'));
  const toggle = page.locator('#telemetry-toggle');
  const token = await page.evaluate(() => sessionStorage.getItem('beacon.token'));
  const apiStatus = async () => {
    const response = await fetch(`${base}/api/v5/telemetry/status`, { headers: { Authorization: `Bearer ${token}` } });
    return response.json();
  };

  if (lockedBy) {
    check(await toggle.isDisabled(), 'the toggle is disabled when a boot source forces telemetry off');
    check(!(await toggle.isChecked()), 'the toggle shows off');
    const warning = await page.textContent('#telemetry-locked');
    check(warning.includes(lockedBy), `the page names ${lockedBy}: ${warning}`);
    await page.screenshot({ path: shot('settings'), fullPage: true });
  } else {
    check(await toggle.isChecked(), 'telemetry starts enabled');
    check(!(await toggle.isDisabled()), 'the toggle can be used');
    // The checkbox itself is visually hidden behind the slider, which takes the click.
    await page.click('.switch .slider');
    await page.waitForFunction(() => document.getElementById('telemetry-source').textContent.includes('off'));
    check(!(await toggle.isChecked()), 'the toggle shows off after the click');
    const source = await page.textContent('#telemetry-source');
    check(source.includes('runtime setting'), `the page names the deciding source: ${source}`);
    const status = await apiStatus();
    check(status.enable === false, `the API says off: ${JSON.stringify(status)}`);
    await page.screenshot({ path: shot('settings-off'), fullPage: true });

    await page.reload();
    await page.waitForSelector('#settings-view:not([hidden])');
    await page.waitForFunction(() => document.getElementById('telemetry-source').textContent !== '');
    check(!(await toggle.isChecked()), 'still off after a reload');
    const badge = await page.textContent('#preview-state');
    check(badge.includes('not sent'), `the preview is marked as not sent: ${badge}`);
    await page.screenshot({ path: shot('settings-after-reload'), fullPage: true });

    // Forgetting asks first: cancelled, nothing is sent; confirmed, the API is called and
    // its refusal (the test's collector never answers) is shown, the ids unchanged.
    const uuid = (await apiStatus()).uuid;
    check((await page.textContent('#telemetry-uuid')) === uuid, `the page shows the node id ${uuid}`);
    const asked = [];
    page.once('dialog', (dialog) => { asked.push(dialog.message()); dialog.dismiss(); });
    await page.click('#telemetry-forget');
    check(asked.length === 1 && asked[0].includes('cannot be undone'), `a confirmation is asked: ${asked}`);
    check(await page.isHidden('#forget-error') && await page.isHidden('#forget-result'), 'cancelled: nothing happens');
    page.once('dialog', (dialog) => dialog.accept());
    await page.click('#telemetry-forget');
    await page.waitForSelector('#forget-error:not([hidden])');
    const refused = await page.textContent('#forget-error');
    check(refused.includes('failed'), `the refusal is shown: ${refused}`);
    check((await apiStatus()).uuid === uuid, 'a refused forget keeps the ids');
    await page.screenshot({ path: shot('settings-forget-refused'), fullPage: true });
  }
  console.log('node settings: ok');
} finally {
  await browser.close();
}
