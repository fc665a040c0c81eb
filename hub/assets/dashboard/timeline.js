// Hearth dashboard: an on/off bar of the last 24 h per light, switch and input,
// from GET /api/v1/timeline (built on the server from the logbook's state entries).
'use strict';

(() => {
  const REFRESH_MS = 5 * 60 * 1000; // the bars creep left as time passes
  const CHANGE_DELAY_MS = 1000; // a burst of state changes costs one request
  const WIDTH = 1000; // the bar's viewBox width

  const list = document.getElementById('timelines');
  const SVG = 'http://www.w3.org/2000/svg';
  let timer = 0; // the next periodic refresh
  let soon = 0; // a refresh after a change, pending

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function duration(ms) {
    const minutes = Math.round(ms / 60000);
    return minutes < 60 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  // "output:pi-1/light/lamp" -> ["lamp", "light on pi-1"]; "input:pi-1/hall" -> ["hall", "input on pi-1"].
  function names(entity) {
    const [kind, path] = entity.split(/:(.*)/s);
    const parts = path.split('/');
    const name = parts[parts.length - 1];
    return [name, `${kind === 'output' ? parts[1] : kind} on ${parts[0]}`];
  }

  function row(timeline, since, until) {
    const start = Date.parse(since), span = Date.parse(until) - start;
    const [name, where] = names(timeline.entity);
    const bar = svg('svg', { class: 'timeline', viewBox: `0 0 ${WIDTH} 10`, preserveAspectRatio: 'none', role: 'img' });
    let onMs = 0;
    for (const s of timeline.spans) {
      const from = Date.parse(s.from), to = Date.parse(s.to);
      if (s.state === 'ON') onMs += to - from;
      bar.append(svg('rect', {
        class: s.state === 'ON' ? 'on' : 'off',
        x: ((from - start) / span * WIDTH).toFixed(1),
        width: Math.max(1, (to - from) / span * WIDTH).toFixed(1),
        y: 0, height: 10,
      }));
    }
    const last = timeline.spans[timeline.spans.length - 1];
    const summary = `${name}: on for ${duration(onMs)} of the last 24 h` +
      (last ? `, ${last.state} now` : ', no state logged') + (timeline.truncated ? ' (too many changes to show all)' : '');
    bar.setAttribute('aria-label', summary);
    const li = document.createElement('li');
    li.dataset.entity = timeline.entity;
    const text = document.createElement('div');
    text.className = 'grow';
    const strong = document.createElement('strong');
    strong.textContent = name;
    const small = document.createElement('small');
    small.textContent = `${where} · on ${duration(onMs)}`;
    text.append(strong, small, bar);
    li.append(text);
    return li;
  }

  async function refresh() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
    try {
      const response = await fetch('api/v1/timeline');
      if (!response.ok) return; // a standby without its database, say: keep the last bars
      const body = await response.json();
      const rows = body.timelines.filter((t) => t.spans.length > 0).map((t) => row(t, body.since, body.until));
      if (rows.length) list.replaceChildren(...rows);
    } catch (_) { /* offline: the next refresh tries again */ }
  }

  // An output or input changed: redraw soon (one request per burst).
  document.addEventListener('hearth:logbook', (event) => {
    if (soon || !event.detail.some((e) => e.kind === 'state' && /^(output|input):/.test(e.entity))) return;
    soon = setTimeout(() => { soon = 0; refresh(); }, CHANGE_DELAY_MS);
  });
  refresh();
})();
