// Hearth dashboard: renders /api/v1/events snapshots and sends commands to /api/v1.
// Plain DOM, no framework, no innerHTML with data: names come from users and devices.
'use strict';

const API = 'api/v1/';
let historyHours = 24; // the climate chart's range: 24 h, 7 d or 30 d (#range)
const HISTORY_POINTS = 144; // one per 10 minutes over 24 h: plenty for a card-wide chart
const HISTORY_REFRESH_MS = 5 * 60 * 1000;
// What a node's `climate` and history rows carry (hearth_protocol::Quantity),
// how each is shown, and its chart line's class in app.css.
const QUANTITIES = [
  { name: 'temperature', unit: '°C', digits: 1, line: 't' },
  { name: 'humidity', unit: '%', digits: 0, line: 'h' },
];

const $ = (id) => document.getElementById(id);
let last = null; // the latest snapshot, re-rendered every 30 s for "n min ago"
const histories = new Map(); // node id -> { fetchedAt, readings }

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// --- talking to the hub -------------------------------------------------------

async function send(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body); // text: sent as typed
  }
  const response = await fetch(API + path, init);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

let toastTimer = 0;
function toast(message) {
  const box = $('toast');
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

// A switch shows only what the hub confirmed: while a command is out it is
// busy, and the next snapshot (or the error) settles it.
async function command(button, method, path, body, done) {
  if (button.getAttribute('aria-busy') === 'true') return;
  button.setAttribute('aria-busy', 'true');
  try {
    await send(method, path, body);
    if (done) toast(done);
  } catch (error) {
    toast(error.message);
  } finally {
    button.setAttribute('aria-busy', 'false');
  }
}

function connect() {
  const events = new EventSource(API + 'events');
  events.addEventListener('snapshot', (event) => {
    setLink(true);
    render(JSON.parse(event.data));
  });
  // EventSource reconnects by itself; say so meanwhile.
  events.addEventListener('error', () => setLink(false));
  // For logbook.js: live entries, and when to re-read a page (the stream
  // (re)opened, or fell behind and skipped entries).
  const reload = () => document.dispatchEvent(new Event('hearth:logbook-reload'));
  events.addEventListener('open', reload);
  events.addEventListener('logbook-lagged', reload);
  events.addEventListener('logbook', (event) =>
    document.dispatchEvent(new CustomEvent('hearth:logbook', { detail: JSON.parse(event.data) })));
}

function setLink(up) {
  const link = $('link');
  link.textContent = up ? 'live' : 'reconnecting';
  link.classList.toggle('down', !up);
}

// --- rendering ----------------------------------------------------------------

function render(snapshot) {
  last = snapshot;
  const hub = snapshot.hub;
  $('clock').textContent = `${hub.clock.slice(0, 2)}:${hub.clock.slice(2)}`;
  $('clock').title = `hub clock, ${hub.timezone}`;
  $('hub').textContent = `hub ${hub.version} · ${hub.role}` +
    (hub.broker_connected ? '' : ' · broker unreachable') +
    (hub.database_ok ? '' : ' · database unreachable');
  sync($('nodes'), snapshot.nodes, (n) => n.id, nodeCard, updateNode, 'No node has reported yet.');
  sync($('outputs'), snapshot.outputs, (o) => `${o.node}/${o.kind}/${o.name}`, outputRow, updateOutput,
    'No light or switch has reported a state yet.');
  sync($('buttons'), snapshot.buttons, (b) => b.id, buttonRow, updateButton, 'No button has been pressed yet.');
  sync($('chimes'), snapshot.chimes, (c) => c.id, chimeRow, updateChime, 'No chime is scheduled.');
  document.dispatchEvent(new CustomEvent('hearth:snapshot', { detail: snapshot }));
}

// Keeps one element per key, in order, updating in place so focus and
// in-flight clicks survive a snapshot.
function sync(container, items, key, create, update, emptyText) {
  const existing = new Map();
  for (const child of [...container.children]) {
    if (child.dataset.key === undefined) child.remove();
    else existing.set(child.dataset.key, child);
  }
  let previous = null;
  for (const item of items) {
    const k = key(item);
    let node = existing.get(k);
    if (node) existing.delete(k);
    else {
      node = create(item);
      node.dataset.key = k;
    }
    update(node, item);
    const expected = previous ? previous.nextSibling : container.firstChild;
    if (node !== expected) container.insertBefore(node, expected);
    previous = node;
  }
  for (const stale of existing.values()) stale.remove();
  if (items.length === 0) {
    container.append(el(container.tagName === 'UL' ? 'li' : 'p', { class: 'empty' }, emptyText));
  }
}

function part(node, name) {
  return node.querySelector(`[data-part="${name}"]`);
}

function toggle(label) {
  return el('button', { role: 'switch', 'aria-checked': 'false', 'aria-label': label, 'data-part': 'switch' });
}

function setSwitch(button, on) {
  button.setAttribute('aria-checked', on ? 'true' : 'false');
}

function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 45) return 'just now';
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} days ago`;
}

// "2026-11-23T07:00:00+01:00" -> "Mon 07:00": the chime's own wall time.
function wallTime(iso) {
  if (!iso) return 'not scheduled';
  const day = new Date(iso.slice(0, 10) + 'T00:00:00Z')
    .toLocaleDateString(undefined, { weekday: 'short', timeZone: 'UTC' });
  return `${day} ${iso.slice(11, 16)}`;
}

function nodeCard(node) {
  return el('article', { class: 'card' },
    el('h3', {}, el('span', { 'data-part': 'name' }, node.id), el('span', { class: 'badge', 'data-part': 'availability' })),
    el('div', { class: 'readings' },
      ...QUANTITIES.map((q) => el('div', {}, el('span', { 'data-part': q.name }, '–'), el('small', {}, q.name)))),
    el('div', { 'data-part': 'chart' }),
    el('div', { class: 'meta', 'data-part': 'seen' }));
}

function updateNode(card, node) {
  const availability = node.availability || 'unknown';
  const badge = part(card, 'availability');
  badge.textContent = availability;
  badge.className = `badge ${availability}`;
  const climate = node.climate;
  for (const q of QUANTITIES) {
    const value = climate && climate[q.name];
    let shown = '–';
    // Math.round, not toFixed(0): they differ on negative halves.
    if (typeof value === 'number') shown = `${q.digits ? value.toFixed(q.digits) : Math.round(value)} ${q.unit}`;
    part(card, q.name).textContent = shown;
  }
  part(card, 'seen').textContent = `seen ${ago(node.last_seen)}`;
  if (climate) refreshHistory(node.id, card);
}

async function refreshHistory(id, card) {
  const known = histories.get(id);
  if (known && (known.loading || Date.now() - known.fetchedAt < HISTORY_REFRESH_MS)) {
    if (known.readings && !part(card, 'chart').firstChild) drawChart(card, known.readings);
    return;
  }
  histories.set(id, { ...known, loading: true });
  try {
    const hours = historyHours;
    const readings = await send('GET', `nodes/${id}/history?hours=${hours}&points=${HISTORY_POINTS}`);
    if (hours !== historyHours) return; // the range changed meanwhile
    histories.set(id, { fetchedAt: Date.now(), readings });
    drawChart(card, readings);
  } catch (_) {
    histories.set(id, { fetchedAt: Date.now(), readings: known && known.readings });
  }
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// Each quantity over the chosen range, scaled to its own range.
function drawChart(card, readings) {
  const box = part(card, 'chart');
  box.replaceChildren();
  if (readings.length < 2) return;
  const width = 300, height = 80, top = 12;
  const end = Date.now(), start = end - historyHours * 3600 * 1000;
  const x = (r) => ((Date.parse(r.at) - start) / (end - start) * width).toFixed(1);
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img' });
  const labels = [];
  for (const { name: field, line: cls, unit } of QUANTITIES) {
    const values = readings.map((r) => r[field]);
    const lo = Math.min(...values), hi = Math.max(...values), range = hi - lo || 1;
    const y = (v) => (top + (height - top - 2) * (1 - (v - lo) / range)).toFixed(1);
    chart.append(svg('polyline', { class: cls, points: readings.map((r) => `${x(r)},${y(r[field])}`).join(' ') }));
    labels.push(`${field} ${lo.toFixed(1)}–${hi.toFixed(1)} ${unit}`);
  }
  const caption = svg('text', { x: 2, y: 9 });
  caption.textContent = `${historyHours >= 48 ? `${historyHours / 24} d` : `${historyHours} h`} · ${labels.join(' · ')}`;
  chart.append(caption);
  chart.setAttribute('aria-label', caption.textContent);
  box.append(chart);
}

function outputRow(output) {
  const label = `${output.name} on ${output.node}`;
  const button = toggle(label);
  button.addEventListener('click', () => {
    const on = button.getAttribute('aria-checked') === 'true';
    command(button, 'PUT', `outputs/${output.node}/${output.kind}/${output.name}`, { state: on ? 'OFF' : 'ON' });
  });
  return el('li', {},
    el('div', { class: 'grow' }, el('strong', {}, output.name), el('small', { 'data-part': 'meta' })),
    button);
}

// A dimmable light's level; sent on 'change' (drag released, key pressed),
// not on every step of a drag.
function dimmer(output) {
  const slider = el('input', { type: 'range', min: 0, max: 255, 'data-part': 'dim', 'aria-label': `brightness of ${output.name} on ${output.node}` });
  slider.addEventListener('change', () => command(slider, 'PUT',
    `outputs/${output.node}/${output.kind}/${output.name}/brightness`, { brightness: Number(slider.value) }));
  return slider;
}

function updateOutput(row, output) {
  setSwitch(part(row, 'switch'), output.state === 'ON');
  if (output.brightness !== undefined) {
    if (!part(row, 'dim')) part(row, 'switch').before(dimmer(output));
    const dim = part(row, 'dim');
    if (document.activeElement !== dim) dim.value = output.brightness;
  }
  part(row, 'meta').textContent = `${output.kind} on ${output.node} · ${output.state} since ${ago(output.changed_at)}`;
}

function buttonRow(button) {
  const sw = toggle(`button ${button.id}`);
  sw.addEventListener('click', () => {
    const on = sw.getAttribute('aria-checked') === 'true';
    command(sw, 'PUT', `buttons/${button.id}`, { state: on ? 'OFF' : 'ON' });
  });
  return el('li', {},
    el('div', { class: 'grow' }, el('strong', {}, button.id), el('small', { 'data-part': 'meta' })),
    sw);
}

function updateButton(row, button) {
  setSwitch(part(row, 'switch'), button.state === 'ON');
  const press = button.last_press_at
    ? `last press ${button.last_action || 'single'} ${ago(button.last_press_at)} · ${button.press_count} ${button.press_count === 1 ? 'press' : 'presses'}`
    : 'never pressed';
  part(row, 'meta').textContent = `${button.state} · ${press}`;
}

function chimeRow(chime) {
  const sw = toggle(`chime ${chime.name || chime.id} enabled`);
  sw.addEventListener('click', () => {
    const on = sw.getAttribute('aria-checked') === 'true';
    command(sw, 'PUT', `chimes/${chime.id}/enabled`, { state: on ? 'OFF' : 'ON' });
  });
  const play = el('button', { class: 'action', 'data-part': 'play' }, 'Play now');
  play.addEventListener('click', () => command(play, 'POST', `chimes/${chime.id}/play`, undefined,
    `Playing ${chime.name || chime.id} on ${chime.speaker}`));
  return el('li', {},
    el('div', { class: 'grow' }, el('strong', { 'data-part': 'name' }), el('small', { 'data-part': 'meta' })),
    play, sw);
}

function updateChime(row, chime) {
  part(row, 'name').textContent = chime.name || chime.id;
  setSwitch(part(row, 'switch'), chime.enabled);
  const next = chime.enabled ? `next ${wallTime(chime.next_at)} (${chime.timezone})` : 'disabled';
  part(row, 'meta').textContent = `${chime.sound} on ${chime.speaker} · ${next}`;
}

$('range').addEventListener('change', (event) => {
  historyHours = Number(event.target.value);
  histories.clear();
  for (const card of $('nodes').children) part(card, 'chart')?.replaceChildren();
  if (last) render(last);
});

setInterval(() => { if (last) render(last); }, 30 * 1000);
// Only once every panel's script has run (deferred scripts may load while
// the stream is already delivering): the first snapshot reaches them all.
document.addEventListener('DOMContentLoaded', connect);
