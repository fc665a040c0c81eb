// Hearth dashboard: an on/off bar of the last 24 h per light, switch and input,
// from GET /api/v1/timeline (built on the server from the logbook's state entries).
// Uses app.js's helpers ($, el, svg, send).
'use strict';

(() => {
  const REFRESH_MS = 5 * 60 * 1000; // the bars creep left as time passes
  const CHANGE_DELAY_MS = 1000; // a burst of state changes costs one request
  const WIDTH = 1000; // the bar's viewBox width

  const list = $('timelines');
  let timer = 0; // the next periodic refresh
  let soon = 0; // a refresh after a change, pending

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
    return el('li', { 'data-entity': timeline.entity },
      el('div', { class: 'grow' }, el('strong', {}, name), el('small', {}, `${where} · on ${duration(onMs)}`), bar));
  }

  async function refresh() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
    try {
      const body = await send('GET', 'timeline');
      const rows = body.timelines.filter((t) => t.spans.length > 0).map((t) => row(t, body.since, body.until));
      if (rows.length) list.replaceChildren(...rows);
    } catch (_) { /* offline, or the database is not answering: keep the last bars */ }
  }

  // An output or input changed: redraw soon (one request per burst).
  document.addEventListener('hearth:logbook', (event) => {
    if (soon || !event.detail.some((e) => e.kind === 'state' && /^(output|input):/.test(e.entity))) return;
    soon = setTimeout(() => { soon = 0; refresh(); }, CHANGE_DELAY_MS);
  });
  refresh();
})();
