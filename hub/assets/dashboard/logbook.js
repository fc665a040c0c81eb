// Hearth dashboard: the logbook panel. Reads pages of GET /api/v1/logbook and
// puts live entries on top as app.js's stream hands them over ('hearth:logbook').
// Plain DOM, no innerHTML: entity names come from users and devices. Uses
// app.js's helpers ($, el, send).
'use strict';

(() => {
  const LOGBOOK_ROWS = 200; // entries kept in the page at most; older ones are a click away
  const PAGE = 50; // entries per request
  const ENTITY_CHOICES = 100; // entity names offered in the filter's list

  const list = $('logbook');
  const status = $('logbook-status');
  const filter = $('logbook-entity');
  const choices = $('logbook-entities');
  const olderButton = $('logbook-older');
  const newestButton = $('logbook-newest');

  let entity = ''; // the filter in force ('' = every entity)
  let atNewest = true; // showing the newest entries: live ones go on top
  let loading = 0; // the request in flight (a newer one makes older answers stale)
  let arrivedMeanwhile = []; // live entries that came while the first page loaded
  const known = new Set(); // entity names seen, for the filter's list

  // "14:03:27", with the day on a line above when it is not today.
  function when(iso) {
    const at = new Date(iso);
    const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    if (at.toDateString() === new Date().toDateString()) return time;
    return `${at.toLocaleDateString([], { month: 'short', day: 'numeric' })}\n${time}`;
  }

  // "output:pi-1/light/lamp" may wrap after its ":" and "/" on a phone.
  function breakable(name) {
    return name.split(/(?<=[:/])/).flatMap((piece) => [piece, document.createElement('wbr')]);
  }

  function row(entry) {
    const li = el('li', { 'data-id': String(entry.id), 'data-at': entry.at, 'data-entity': entry.entity, 'data-kind': entry.kind },
      el('time', { datetime: entry.at }, when(entry.at)),
      el('span', { class: 'grow' }, el('strong', {}, ...breakable(entry.entity)),
        el('small', {}, `${entry.kind} ${entry.detail} · ${entry.source}`)),
      el('span', { class: `badge ${entry.kind}` }, entry.detail));
    return li;
  }

  function remember(entries) {
    for (const e of entries) {
      if (known.has(e.entity) || known.size >= ENTITY_CHOICES) continue;
      known.add(e.entity);
      choices.append(el('option', { value: e.entity }));
    }
  }

  function shownIds() {
    return new Set([...list.children].map((li) => li.dataset.id));
  }

  function showEmpty() {
    if (!list.firstElementChild) list.append(el('li', { class: 'empty' }, entity ? `Nothing logged for ${entity}.` : 'Nothing logged yet.'));
  }

  // The cursor of the oldest entry shown: `<at ms>-<id>`, as the API's `next`.
  function oldestCursor() {
    const last = list.lastElementChild;
    if (!last || last.dataset.id === undefined) return null;
    return `${Date.parse(last.dataset.at)}-${last.dataset.id}`;
  }

  // A page; a refusal throws the hub's message.
  function fetchPage(name, before) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (name) query.set('entity', name);
    if (before) query.set('before', before);
    return send('GET', `logbook?${query}`);
  }

  // The newest page for the filter `wanted`, replacing what is shown; live
  // entries that arrive while it loads are kept and put on top of it. A
  // refused filter is shown with the hub's message and changes nothing.
  async function loadNewest(wanted) {
    if (typeof wanted !== 'string') wanted = entity;
    const mine = ++loading;
    arrivedMeanwhile = [];
    status.textContent = 'Loading…';
    let page;
    try {
      page = await fetchPage(wanted, null);
    } catch (error) {
      if (mine !== loading) return;
      loading = 0;
      status.textContent = `Logbook: ${error.message}`;
      live(arrivedMeanwhile);
      return;
    }
    if (mine !== loading) return;
    loading = 0;
    entity = wanted;
    atNewest = true;
    newestButton.hidden = true;
    status.textContent = '';
    list.replaceChildren(...page.entries.map(row));
    remember(page.entries);
    olderButton.hidden = !page.next;
    live(arrivedMeanwhile);
    arrivedMeanwhile = [];
    showEmpty();
  }

  async function loadOlder() {
    const before = oldestCursor();
    if (!before) return;
    olderButton.setAttribute('aria-busy', 'true');
    try {
      const page = await fetchPage(entity, before);
      const seen = shownIds();
      list.append(...page.entries.filter((e) => !seen.has(String(e.id))).map(row));
      remember(page.entries);
      olderButton.hidden = !page.next;
      // Bounded: the newest go, and live entries wait for "Newest".
      let dropped = 0;
      while (list.children.length > LOGBOOK_ROWS) { list.firstElementChild.remove(); dropped += 1; }
      if (dropped > 0) { atNewest = false; newestButton.hidden = false; }
      status.textContent = '';
    } catch (error) {
      status.textContent = `Logbook: ${error.message}`;
    } finally {
      olderButton.setAttribute('aria-busy', 'false');
    }
  }

  // Entries of one committed batch, oldest first: newest go on top.
  function live(entries) {
    if (loading) { arrivedMeanwhile.push(...entries); return; }
    if (!atNewest) return;
    const seen = shownIds();
    const fresh = entries.filter((e) => (!entity || e.entity === entity) && !seen.has(String(e.id)));
    if (fresh.length === 0) return;
    list.querySelector('.empty')?.remove();
    list.prepend(...fresh.reverse().map(row));
    remember(fresh);
    while (list.children.length > LOGBOOK_ROWS) { list.lastElementChild.remove(); olderButton.hidden = false; }
  }

  filter.addEventListener('change', () => loadNewest(filter.value.trim()));
  olderButton.addEventListener('click', loadOlder);
  newestButton.addEventListener('click', loadNewest);
  document.addEventListener('hearth:logbook', (event) => live(event.detail));
  document.addEventListener('hearth:logbook-reload', loadNewest);
  loadNewest();
})();
