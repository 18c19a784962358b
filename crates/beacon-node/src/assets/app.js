// Beacon node dashboard: login, overview and the telemetry settings, over the REST API.
'use strict';

const TOKEN_KEY = 'beacon.token';
const $ = (id) => document.getElementById(id);
let overviewTimer = null;

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(method, path, body) {
  const headers = { 'Authorization': `Bearer ${token()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) { showLogin(); throw new Error('logged out'); }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `HTTP ${response.status}`);
  return { data, response };
}

function showLogin() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(overviewTimer);
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('password').focus();
}

async function login(event) {
  event.preventDefault();
  $('login-error').hidden = true;
  const response = await fetch('/api/v5/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: $('username').value, password: $('password').value }),
  });
  if (!response.ok) {
    $('login-error').textContent = 'Wrong username or password.';
    $('login-error').hidden = false;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, (await response.json()).token);
  $('password').value = '';
  route();
}

async function logout() {
  await fetch('/api/v5/logout', { method: 'POST', headers: { 'Authorization': `Bearer ${token()}` } });
  showLogin();
}

function route() {
  if (!token()) return showLogin();
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  const page = location.hash === '#settings' ? 'settings' : 'overview';
  for (const name of ['overview', 'settings']) {
    $(`${name}-view`).hidden = name !== page;
    $(`nav-${name}`).classList.toggle('active', name === page);
  }
  clearInterval(overviewTimer);
  if (page === 'overview') {
    loadOverview();
    overviewTimer = setInterval(loadOverview, 2000);
  } else {
    loadSettings();
  }
}

const number = (n) => Number(n).toLocaleString('en-US');
const rate = (n) => Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 });

function duration(ms) {
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

function when(iso) {
  if (!iso) return '–';
  return new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

async function loadOverview() {
  try {
    const { data } = await api('GET', '/api/v5/overview');
    $('ov-clients').textContent = number(data.num_clients);
    $('ov-topics').textContent = number(data.num_topics);
    $('ov-in-rate').textContent = rate(data.received_per_second);
    $('ov-out-rate').textContent = rate(data.sent_per_second);
    $('ov-received').textContent = number(data.messages_received);
    $('ov-sent').textContent = number(data.messages_sent);
    $('ov-retained').textContent = number(data.retained);
    $('ov-uptime').textContent = duration(data.up_time_ms);
    $('ov-version').textContent = data.version;
    $('ov-listener').textContent = data.mqtt_listener || 'disabled';
    const { data: nodes } = await api('GET', '/api/v5/nodes');
    showNodes(nodes);
  } catch (error) { console.warn(error); }
}

// This node and, in a cluster, every other one, running or stopped.
function showNodes(nodes) {
  const body = $('nodes');
  body.replaceChildren();
  for (const node of nodes) {
    const row = body.insertRow();
    row.className = `node-${node.node_status}`;
    const running = node.node_status === 'running';
    for (const text of [node.node, node.node_status, running ? duration(node.uptime) : '–',
      running ? number(node.connections) : '–', node.version || '–']) {
      row.insertCell().textContent = text;
    }
  }
}

function showStatus(status) {
  const toggle = $('telemetry-toggle');
  toggle.checked = status.enable;
  toggle.disabled = Boolean(status.locked_by);
  $('telemetry-source').textContent = `Telemetry is ${status.enable ? 'on' : 'off'}, decided by: ${status.source}.`;
  const locked = $('telemetry-locked');
  locked.hidden = !status.locked_by;
  const clusterOn = status.runtime_switch && status.runtime_switch.enable
    ? ' The runtime setting (shared by the cluster) says on; this node stays off.' : '';
  locked.textContent = status.locked_by
    ? `Telemetry is switched off by ${status.locked_by}, so it cannot be switched on here. Change that setting and restart the broker to enable it.${clusterOn}`
    : '';
  $('telemetry-last').textContent = when(status.last_report_at);
  $('telemetry-next').textContent = status.enable ? when(status.next_report_at) : 'never (telemetry is off)';
  $('telemetry-url').textContent = status.url;
  $('telemetry-interval').textContent = status.interval;
  $('telemetry-uuid').textContent = status.uuid || '–';
  const badge = $('preview-state');
  badge.textContent = status.enable ? 'will be sent' : 'not sent: telemetry is off';
  badge.classList.toggle('off', !status.enable);
}

async function loadSettings() {
  try {
    const [{ data: status }, { data: preview }, { data: sent }] = await Promise.all([
      api('GET', '/api/v5/telemetry/status'),
      api('GET', '/api/v5/telemetry/data'),
      api('GET', '/api/v5/telemetry/sent'),
    ]);
    showStatus(status);
    $('telemetry-preview').textContent = JSON.stringify(preview, null, 2);
    showSent(sent.reports);
  } catch (error) { console.warn(error); }
}

function showSent(reports) {
  const body = $('sent-log');
  body.replaceChildren();
  if (!reports.length) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 3; cell.className = 'muted'; cell.textContent = 'No report sent yet.';
    return;
  }
  for (const record of [...reports].reverse()) {
    const row = body.insertRow();
    row.insertCell().textContent = when(record.at);
    row.insertCell().textContent = `${record.status} ${record.accepted ? 'accepted' : 'refused'}`;
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = 'show';
    const pre = document.createElement('pre');
    pre.className = 'json';
    pre.textContent = JSON.stringify(record.report, null, 2);
    details.append(summary, pre);
    row.insertCell().append(details);
  }
}

async function toggleTelemetry() {
  const toggle = $('telemetry-toggle');
  const wanted = toggle.checked;
  $('telemetry-error').hidden = true;
  toggle.disabled = true;
  try {
    const { data } = await api('PUT', '/api/v5/telemetry/status', { enable: wanted });
    showStatus(data);
    const { data: preview } = await api('GET', '/api/v5/telemetry/data');
    $('telemetry-preview').textContent = JSON.stringify(preview, null, 2);
  } catch (error) {
    toggle.checked = !wanted;
    toggle.disabled = false;
    $('telemetry-error').textContent = error.message;
    $('telemetry-error').hidden = false;
  }
}

// The deletion cannot be undone, so it asks first.
async function forgetNode() {
  const button = $('telemetry-forget');
  $('forget-result').hidden = true;
  $('forget-error').hidden = true;
  if (!window.confirm('Delete this node\'s reports at the collector and start over with new ids? This cannot be undone.')) return;
  button.disabled = true;
  try {
    const { data } = await api('POST', '/api/v5/telemetry/forget');
    const what = data.collector_had_data ? 'deleted this node\'s reports' : 'held no report of this node';
    $('forget-result').textContent = `The collector ${what}. This node now reports as ${data.new_uuid} (was ${data.old_uuid}).`;
    $('forget-result').hidden = false;
    await loadSettings();
  } catch (error) {
    $('forget-error').textContent = error.message;
    $('forget-error').hidden = false;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('telemetry-toggle').addEventListener('change', toggleTelemetry);
  $('telemetry-forget').addEventListener('click', forgetNode);
  window.addEventListener('hashchange', route);
  route();
});
