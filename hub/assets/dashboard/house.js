// Hearth dashboard, "run the house": scenes, automations with their traces,
// node inputs as badges, and an editor for automation and scene JSON.
// Listens for app.js's 'hearth:snapshot' event; uses its helpers (el, part,
// sync, toggle, setSwitch, command, toast, ago, wallTime).
'use strict';

const TRACES_SHOWN = 5; // a phone-sized look back; the API serves up to 100
const VIEW_ONLY = ['source', 'next_at', 'running', 'last_run']; // view fields, not definition
const TEMPLATES = {
  automations: { id: 'new-automation', name: 'New automation', triggers: [{ button: 'desk', action: 'single' }], actions: [{ output: 'pi-1/light/lamp', command: 'TOGGLE' }] },
  scenes: { id: 'new-scene', name: 'New scene', outputs: [{ output: 'pi-1/light/lamp', command: 'ON' }] },
};

const openTraces = new Map(); // automation id -> last_run.at shown, while its trace is open
let editing = null; // { kind: 'automations' | 'scenes', id } being replaced, or null for a new one

function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';
}

// --- inputs: badges on their node's card ------------------------------------------

function renderInputs(inputs) {
  const byNode = new Map();
  for (const i of inputs) {
    if (!byNode.has(i.node)) byNode.set(i.node, []);
    byNode.get(i.node).push(i);
  }
  const orphans = [];
  for (const card of $('nodes').querySelectorAll('article[data-key]')) {
    let box = part(card, 'inputs');
    if (!box) {
      box = el('div', { class: 'inputs', 'data-part': 'inputs' });
      part(card, 'seen').before(box);
    }
    const mine = byNode.get(card.dataset.key) || [];
    byNode.delete(card.dataset.key);
    badges(box, mine, (i) => i.name);
  }
  for (const rest of byNode.values()) orphans.push(...rest);
  $('inputs-section').hidden = orphans.length === 0;
  badges($('inputs'), orphans, (i) => `${i.node}/${i.name}`);
}

// sync() without its "nothing here" line: no badge says enough.
function badges(box, inputs, key) {
  sync(box, inputs, key, inputBadge, updateInputBadge, '');
  for (const empty of box.querySelectorAll('.empty')) empty.remove();
}

function inputBadge() {
  return el('span', { class: 'badge input' });
}

// Read as it shows ("door ON"), inside its node's card.
function updateInputBadge(badge, input) {
  badge.textContent = `${input.name} ${input.state}`;
  badge.className = `badge input ${input.state === 'ON' ? 'online' : ''}`;
}

// --- scenes: one button each -----------------------------------------------------

function sceneChip(scene) {
  const name = scene.name || scene.id;
  const apply = el('button', { class: 'action', 'data-part': 'apply', 'aria-label': `apply scene ${name}` }, name);
  apply.addEventListener('click', () => command(apply, 'POST', `scenes/${scene.id}/apply`, undefined, `Applied ${apply.textContent}`));
  const edit = el('button', { class: 'action', 'data-part': 'edit', 'aria-label': `edit scene ${name}` }, '✎');
  edit.addEventListener('click', () => load('scenes', scene.id));
  return el('span', { class: 'chip' }, apply, edit);
}

function updateSceneChip(chip, scene) {
  part(chip, 'apply').textContent = scene.name || scene.id;
}

// --- automations --------------------------------------------------------------------

function automationRow(a) {
  const sw = toggle(`automation ${a.name || a.id} enabled`);
  sw.addEventListener('click', () => {
    const on = sw.getAttribute('aria-checked') === 'true';
    command(sw, 'PUT', `automations/${a.id}/enabled`, { state: on ? 'OFF' : 'ON' });
  });
  const run = el('button', { class: 'action', 'data-part': 'run' }, 'Run');
  run.addEventListener('click', () => command(run, 'POST', `automations/${a.id}/run`, undefined, `Ran ${a.name || a.id}`));
  const traces = el('div', { class: 'traces', 'data-part': 'traces', id: `traces-${a.id}`, hidden: '' });
  const trace = el('button', { class: 'action', 'data-part': 'trace', 'aria-expanded': 'false', 'aria-controls': traces.id }, 'Trace');
  trace.addEventListener('click', () => {
    const open = trace.getAttribute('aria-expanded') !== 'true';
    trace.setAttribute('aria-expanded', String(open));
    traces.hidden = !open;
    if (open) loadTraces(a.id, traces);
    else openTraces.delete(a.id);
  });
  const edit = el('button', { class: 'action', 'data-part': 'edit' }, 'Edit');
  edit.addEventListener('click', () => load('automations', a.id));
  return el('li', { class: 'automation' },
    el('div', { class: 'grow' }, el('strong', { 'data-part': 'name' }), el('small', { 'data-part': 'meta' })),
    el('span', { class: 'tools' }, trace, edit, run, sw),
    traces);
}

function updateAutomation(row, a) {
  const name = a.name || a.id;
  part(row, 'name').textContent = name;
  for (const [p, label] of [['trace', 'trace of'], ['edit', 'edit'], ['run', 'run']]) part(row, p).setAttribute('aria-label', `${label} automation ${name}`);
  setSwitch(part(row, 'switch'), a.enabled);
  const bits = [];
  bits.push(a.last_run ? `last run ${ago(a.last_run.at)} (${a.last_run.outcome.replace(/_/g, ' ')})` : 'never run');
  if (a.running) bits.push(`${a.running} running`);
  bits.push(a.enabled ? (a.next_at ? `next ${when(a.next_at)}` : 'no scheduled trigger') : 'disabled');
  part(row, 'meta').textContent = bits.join(' · ');
  // An open trace follows new runs.
  const shown = openTraces.get(a.id);
  const latest = a.last_run ? a.last_run.at : null;
  if (shown !== undefined && shown !== latest) loadTraces(a.id, part(row, 'traces'));
}

async function loadTraces(id, box) {
  openTraces.set(id, (last.automations.find((a) => a.id === id)?.last_run || {}).at || null);
  box.setAttribute('aria-busy', 'true');
  try {
    const runs = await send('GET', `automations/${id}/traces?limit=${TRACES_SHOWN}`);
    box.replaceChildren(...(runs.length ? runs.map(traceView) : [el('p', { class: 'empty' }, 'No run yet.')]));
  } catch (error) {
    box.replaceChildren(el('p', { role: 'alert' }, error.message));
  } finally {
    box.setAttribute('aria-busy', 'false');
  }
}

function traceView(t) {
  const conditions = t.conditions.map((c) =>
    el('li', { class: c.held ? 'held' : 'failed' }, `${c.held ? '✓ held' : '✗ blocked'}: ${c.saw}`));
  const steps = t.steps.map((s) => el('li', {}, `${when(s.at)} · step ${s.step + 1}: ${s.what}`));
  return el('article', { class: 'run', 'data-run': String(t.run) },
    el('p', {}, el('strong', { 'data-part': 'outcome' }, t.outcome.replace(/_/g, ' ')), ` · ${when(t.started_at)} · `, t.trigger),
    conditions.length ? el('ul', { 'aria-label': 'conditions' }, ...conditions) : null,
    steps.length ? el('ol', { 'aria-label': 'steps' }, ...steps) : null);
}

// --- the editor -------------------------------------------------------------------

async function load(kind, id) {
  try {
    const view = await send('GET', `${kind}/${id}`);
    for (const k of VIEW_ONLY) delete view[k];
    editing = { kind, id };
    showEditor(kind, JSON.stringify(view, null, 2), `Editing ${kind === 'scenes' ? 'scene' : 'automation'} ${id}`);
    $('edit-json').focus();
  } catch (error) {
    toast(error.message);
  }
}

function armDelete() {
  const del = $('edit-delete');
  del.hidden = !editing;
  del.textContent = 'Delete';
  if (editing) del.setAttribute('aria-label', `delete ${editing.kind === 'scenes' ? 'scene' : 'automation'} ${editing.id}`);
}

function showEditor(kind, text, title) {
  armDelete();
  $('edit-kind').value = kind;
  $('edit-json').value = text;
  $('edit-title').textContent = title;
  setError('');
  $('edit-status').textContent = '';
}

function setError(message) {
  $('edit-error').textContent = message;
  $('edit-error').hidden = !message;
  $('edit-json').setAttribute('aria-invalid', message ? 'true' : 'false');
}

async function save(event) {
  event.preventDefault();
  const kind = $('edit-kind').value;
  const button = $('edit-save');
  if (button.getAttribute('aria-busy') === 'true') return;
  button.setAttribute('aria-busy', 'true');
  const replacing = editing && editing.kind === kind;
  try {
    // Sent as typed: the hub parses and checks it, so its message (naming
    // the field) is what the person sees.
    const shown = replacing
      ? await send('PUT', `${kind}/${editing.id}`, $('edit-json').value)
      : await send('POST', kind, $('edit-json').value);
    editing = { kind, id: shown.id };
    armDelete();
    setError('');
    $('edit-title').textContent = `Editing ${kind === 'scenes' ? 'scene' : 'automation'} ${shown.id}`;
    $('edit-status').textContent = `Saved ${shown.id}.`;
  } catch (error) {
    // Nothing was saved: the hub refuses a definition as a whole.
    setError(error.message);
    $('edit-status').textContent = '';
  } finally {
    button.setAttribute('aria-busy', 'false');
  }
}

// Two presses, the second on "Really delete?": a slip of the finger on a
// phone must not take an automation away.
async function remove() {
  const del = $('edit-delete');
  if (!editing) return;
  if (del.textContent === 'Delete') {
    del.textContent = 'Really delete?';
    return;
  }
  const { kind, id } = editing;
  try {
    await send('DELETE', `${kind}/${id}`);
    startNew(false);
    $('edit-status').textContent = `Deleted ${id}.`;
  } catch (error) {
    // Refused as a whole (a scene an automation applies): the hub says why.
    setError(error.message);
    del.textContent = 'Delete';
  }
}

function startNew(focus) {
  const kind = $('edit-kind').value;
  editing = null;
  showEditor(kind, JSON.stringify(TEMPLATES[kind], null, 2), `New ${kind === 'scenes' ? 'scene' : 'automation'}`);
  if (focus) $('edit-json').focus();
}

$('editor').addEventListener('submit', save);
$('edit-new').addEventListener('click', () => startNew(true));
$('edit-delete').addEventListener('click', remove);
startNew(false);

document.addEventListener('hearth:snapshot', (event) => {
  const s = event.detail;
  renderInputs(s.inputs || []);
  sync($('scenes'), s.scenes || [], (x) => x.id, sceneChip, updateSceneChip, 'No scene yet: write one below.');
  sync($('automations'), s.automations || [], (x) => x.id, automationRow, updateAutomation, 'No automation yet: write one below.');
  const more = (s.automations_total || 0) - (s.automations || []).length;
  $('automations-more').textContent = more > 0 ? `${more} more: see api/v1/automations` : '';
});
