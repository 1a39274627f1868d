// The topic page: figures, charts, groups with their consumers and
// actions, pending entries and the newest messages.
import {h, fill, get, num, rate, dur, when, lagText, problemText, dlqHref, table, payload, metadata, readOnly, enc, counts, plural, toast, confirm, act} from './util.js';
import {chart} from './chart.js';
import {groupActions} from './groups.js';

const palette = (i) => `s${i % 6}`;

function stat(label, value, cls) {
  return h('div', {class: `stat ${cls || ''}`}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value));
}

function charts(t) {
  const se = t.series, names = Object.keys(se.groups || {}).sort();
  const lag = names.map((g, i) => ({name: g, values: se.groups[g].lag, cls: palette(i)}));
  const flow = [{name: 'in', values: se.in, cls: 's-in'}]
    .concat(names.map((g, i) => ({name: `out ${g}`, values: se.groups[g].out, cls: palette(i)})));
  return h('div', {class: 'charts'},
    chart('Lag (entries not read yet)', se.t, lag, (v) => num(Math.round(v))),
    chart('Throughput (entries per second)', se.t, flow, (v) => rate(v)));
}

// groupBadges are a group's states beside its name.
function groupBadges(g) {
  return [
    g.paused ? h('span', {class: 'badge warn', 'data-state': 'paused', title: g.pausedSince ? `since ${when(g.pausedSince)}` : ''}, 'paused') : null,
    g.beyondEnd ? h('span', {class: 'badge bad', 'data-state': 'beyond-end'}, 'beyond the end') : null,
    g.abandoned ? h('span', {class: 'badge bad', 'data-state': 'abandoned'}, 'abandoned') : null,
    g.dropped ? h('span', {class: 'badge bad', 'data-state': 'dropped'}, `${num(g.dropped)} dropped`) : null,
  ];
}

function groups(t) {
  if (!t.groups.length) return h('p', {class: 'muted'}, 'No consumer group.');
  return t.groups.map((g) => {
    const probs = t.problems.filter((p) => p.group === g.name);
    return h('div', {class: 'group', 'data-group': g.name},
      h('h3', {}, g.name, groupBadges(g), readOnly ? null : groupActions(t, g)),
      probs.length ? h('ul', {class: 'problems-inline'}, probs.map((p) => h('li', {class: p.level}, problemText(p)))) : null,
      h('div', {class: 'stats'},
        stat('Lag', lagText(g.lag, g.lagSource === 'lower-bound'), probs.some((p) => p.kind === 'behind') ? 'bad' : ''),
        stat('Pending', num(g.pending)),
        stat('Oldest pending', g.pending ? dur(g.oldestPendingAgeMs) : '–', probs.some((p) => p.kind === 'old-pending') ? 'bad' : ''),
        stat('Oldest unread', g.lag ? dur(g.oldestUnreadAgeMs) : '–'),
        stat('Out /s', rate(g.out)),
        stat('Last delivered', g.lastDeliveredId)),
      g.consumers.length
        ? table(['Consumer', 'Pending', 'Idle', 'Inactive'], g.consumers.map((c) => h('tr', {},
          h('td', {}, c.name), h('td', {class: 'num'}, num(c.pending)), h('td', {class: 'num'}, dur(c.idleMs)),
          h('td', {class: 'num'}, c.inactiveMs < 0 ? '–' : dur(c.inactiveMs)))), {class: 'grid consumers'})
        : h('p', {class: 'muted'}, 'No consumer.'));
  });
}

const pendingHref = (topic, g, id) => `#/topic/${enc(topic)}/pending/${enc(g)}/${enc(id)}`;
const cut = (s, n) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

function pendingLists(topic, lists) {
  const names = Object.keys(lists).sort();
  if (!names.length) return h('p', {class: 'muted'}, 'No group.');
  return names.map((g) => h('div', {class: 'pending', 'data-group': g},
    h('h3', {}, `Group ${g}`),
    lists[g].length
      ? table(['Entry ID', 'Owner', 'Age', 'Idle', 'Deliveries', 'Last error'], lists[g].map((p) => h('tr', {class: 'pending-row', 'data-id': p.id},
        h('td', {class: 'mono'}, h('a', {href: pendingHref(topic, g, p.id)}, p.id)), h('td', {}, p.consumer),
        h('td', {class: 'num age', title: 'since the entry was added (from its ID)'}, dur(p.ageMs)),
        h('td', {class: 'num idle', title: 'since its last delivery; a claim or a hand-over restarts it'}, dur(p.idleMs)),
        h('td', {class: 'num'}, num(p.deliveries)),
        h('td', {class: 'last-error bad-text', title: p.lastError || ''}, p.lastError ? cut(p.lastError, 60) : ''))), {class: 'grid'})
      : h('p', {class: 'muted'}, 'Nothing pending.')));
}

// pendingDetail shows a pending entry like a dead letter.
function pendingDetail(e) {
  const field = (k, v) => [h('dt', {}, k), h('dd', {}, v === '' || v === undefined ? '–' : v)];
  return h('section', {id: 'pending-entry', class: 'detail', 'data-id': e.id},
    h('h2', {}, `Pending entry ${e.id} of group ${e.group}`),
    h('dl', {class: 'fields'},
      field('Last error', e.lastError ? h('span', {id: 'pe-last-error', class: 'bad-text'}, e.lastError) : h('span', {id: 'pe-last-error', class: 'muted'}, 'none recorded')),
      field('Consumer', h('span', {id: 'pe-consumer'}, e.consumer)),
      field('Deliveries', h('span', {id: 'pe-deliveries'}, num(e.deliveries))),
      field('Age', h('span', {id: 'pe-age'}, `${dur(e.ageMs)} (added ${when(e.time)})`)),
      field('Idle', h('span', {id: 'pe-idle'}, `${dur(e.idleMs)} since its last delivery`)),
      field('UUID', e.uuid)),
    e.trimmed ? h('p', {class: 'bad-text'}, 'The entry was deleted from the stream while pending (trimmed): only the pending entries list still names it.') : [
      e.foreign ? h('p', {}, h('span', {class: 'badge foreign'}, 'foreign entry'), ' written by another producer: the payload shows its fields') : null,
      e.error ? h('p', {class: 'bad-text'}, `Cannot decode: ${e.error}`) : null,
      h('h3', {}, 'Metadata'), metadata(e.metadata),
      h('h3', {}, 'Payload'), payload(e)]);
}

export function message(m) {
  return h('article', {class: 'message', 'data-id': m.id},
    h('header', {}, h('span', {class: 'mono'}, m.id), ' ', h('span', {class: 'muted'}, when(m.time)), ' ',
      h('span', {class: 'mono'}, m.uuid), m.foreign ? h('span', {class: 'badge foreign'}, 'foreign entry') : null,
      m.error ? h('span', {class: 'badge bad'}, 'cannot decode') : null),
    m.error ? h('p', {class: 'bad-text'}, m.error) : null,
    metadata(m.metadata), payload(m));
}

// parseBound turns what was typed into a bound of /api/browse: an entry
// ID as is, a time (UTC unless it says otherwise) as Unix ms; null when it
// is neither, '' when empty.
function parseBound(v) {
  v = v.trim();
  if (!v) return '';
  if (/^\d+-\d+$/.test(v) || /^\d+$/.test(v)) return v;
  const iso = v.replace(' ', 'T');
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + 'Z');
  return isNaN(ms) ? null : String(ms);
}

// browse is the topic's messages, read a page at a time: from an entry ID
// or a time, newest or oldest first (what `millrace tail --from` does).
function browse(name) {
  const from = h('input', {type: 'text', id: 'browse-from', size: 30, placeholder: 'entry ID or time, e.g. 2026-12-07 03:00'});
  const order = h('select', {id: 'browse-order'}, h('option', {value: 'newest'}, 'newest first'), h('option', {value: 'oldest'}, 'oldest first'));
  const list = h('div', {id: 'browse-list'});
  const st = {after: '', page: 1, pages: ['']};
  const el = h('section', {id: 'browse'},
    h('div', {class: 'section-head'}, h('h2', {}, 'Messages')),
    h('form', {class: 'browse-form', onsubmit: (e) => { e.preventDefault(); st.pages = ['']; st.page = 1; load(''); }},
      'From ', from, ' ', order, ' ', h('button', {id: 'browse-go'}, 'Show')),
    list);
  async function load(after) {
    const bound = parseBound(from.value);
    if (bound === null) { fill(list, h('p', {class: 'bad-text', id: 'browse-error'}, `Not an entry ID or a time: ${from.value}`)); return; }
    const reverse = order.value === 'newest';
    let r;
    try {
      r = await get(`/api/browse?topic=${enc(name)}&count=20&from=${enc(bound)}&after=${enc(after)}${reverse ? '&reverse=1' : ''}`);
    } catch (e) { fill(list, h('p', {class: 'bad-text', id: 'browse-error'}, e.message)); return; }
    st.after = after;
    list.dataset.from = bound;
    list.dataset.order = order.value;
    list.dataset.page = st.page;
    const ids = r.messages.map((m) => m.id);
    fill(list,
      r.messages.length ? [
        h('p', {class: 'muted', id: 'browse-page'}, `Page ${st.page} · ${r.messages.length} ${reverse ? 'newest first' : 'oldest first'}, ${ids[0]} to ${ids[ids.length - 1]}`),
        h('div', {id: 'messages'}, r.messages.map(message))]
        : h('p', {class: 'muted', id: 'browse-empty'}, st.page > 1 ? 'No more messages.' : (bound ? 'No message from there.' : 'The stream is empty.')),
      h('div', {class: 'toolbar'},
        st.page > 1 ? h('button', {id: 'browse-prev', onclick: () => { st.page--; load(st.pages[st.page - 1]); }}, '← Previous page') : null,
        r.next ? h('button', {id: 'browse-next', onclick: () => { st.page++; st.pages[st.page - 1] = r.next; load(r.next); }}, `${reverse ? 'Older' : 'Newer'} →`) : null));
  }
  return {el, again: () => load(st.after)};
}

// deleteTopic asks for the topic's name typed again, says from Redis what
// goes with it, and refuses while a group holds pending entries unless
// forced.
async function deleteTopic(name) {
  let t;
  try { t = await counts(name); } catch (e) { toast(`Failed: ${e.message}`, true); return; }
  const holding = t.groups.filter((g) => g.pending > 0);
  const typed = h('input', {type: 'text', id: 'delete-topic-name', autocomplete: 'off', size: 30});
  const force = h('input', {type: 'checkbox', id: 'delete-topic-force'});
  const body = [
    h('p', {class: 'what', id: 'delete-topic-what'}, `Topic ${name} is deleted for good with everything of it: ` +
      `${plural(t.length, 'entry', 'entries')}, ${plural(t.groups.length, 'consumer group')}, ${plural(t.deadLetters, 'dead letter')}, ` +
      'its delayed messages and its keys. This cannot be undone. Stop its publishers and subscribers first: they would create it again.'),
    holding.length ? h('div', {class: 'beyond', id: 'delete-topic-pending'},
      h('p', {class: 'bad-text'}, 'Refused while groups hold pending entries, not yet processed: ' +
        holding.map((g) => `${g.name} (${num(g.pending)})`).join(', ') + '.'),
      h('label', {class: 'choice'}, force, ' Delete them too (force)')) : null,
    h('p', {}, 'Type the topic’s name to confirm: ', typed),
  ];
  let setEnabled;
  const update = () => setEnabled(typed.value === name && (!holding.length || force.checked));
  typed.addEventListener('input', update);
  force.addEventListener('change', update);
  const ok = await confirm(`Delete topic ${name}`, body, 'Delete topic', (f) => { setEnabled = f; update(); });
  if (!ok) return;
  const r = await act('/api/topic/delete', {topic: name, confirm: typed.value, force: force.checked},
    (r) => `Topic ${name} deleted: ${plural(r.entries, 'entry', 'entries')}, ${plural(r.deadLetters, 'dead letter')}, ${plural(r.groups, 'group')}.`);
  if (r) location.hash = '#/';
}

// topicPage renders the page and returns its refresh for each round and
// the reload of its lists after actions.
export async function topicPage(main, name, rest) {
  const lists = h('section', {id: 'lists'}, h('p', {class: 'muted'}, 'Loading…'));
  const live = h('div', {id: 'topic-live'});
  const pendingTop = h('div', {id: 'pending-open'});
  const browser = browse(name);
  const state = {open: null};
  // open shows a pending entry (rest: ['pending', group, id]) under its
  // row, scrolled into view only if it is not; one not listed above them.
  async function open(arg) {
    state.open = arg && arg[0] === 'pending' && arg[2] ? {group: arg[1], id: arg[2]} : null;
    lists.querySelectorAll('tr.pending-detail').forEach((r) => r.remove());
    lists.querySelectorAll('tr.pending-row.open').forEach((r) => r.classList.remove('open'));
    fill(pendingTop);
    const o = state.open;
    if (!o) return;
    let content;
    try { content = pendingDetail(await get(`/api/pending?topic=${enc(name)}&group=${enc(o.group)}&id=${enc(o.id)}`)); }
    catch (e) { content = h('p', {class: 'muted', id: 'pending-gone'}, `Entry ${o.id} is no longer pending in group ${o.group} (${e.message}).`); }
    if (state.open !== o) return;
    const row = lists.querySelector(`.pending[data-group="${CSS.escape(o.group)}"] tr.pending-row[data-id="${CSS.escape(o.id)}"]`);
    if (!row) { fill(pendingTop, content); return; }
    row.classList.add('open');
    const under = h('tr', {class: 'pending-detail'}, h('td', {colspan: row.children.length}, content));
    row.after(under);
    if (row.getBoundingClientRect().top < 0 || under.getBoundingClientRect().bottom > window.innerHeight) row.scrollIntoView({block: 'start'});
  }
  async function loadLists() {
    const m = await get(`/api/messages?topic=${enc(name)}&count=20`);
    fill(lists,
      h('div', {class: 'section-head'}, h('h2', {}, 'Pending entries'), h('button', {onclick: loadLists, id: 'reload-lists'}, 'Reload')),
      pendingTop,
      pendingLists(name, m.pending));
  }
  async function refresh() {
    const {topic: t, error} = await get(`/api/topic?topic=${enc(name)}`);
    fill(live, 
      error ? h('p', {class: 'bad-text'}, `Cannot read Redis: ${error}`) : null,
      h('div', {class: 'stats'},
        stat('Length', num(t.length)),
        stat('In /s', rate(t.in)), stat('Out /s', rate(t.out)),
        stat('Dead letters', h('a', {href: dlqHref(name), id: 'dlq-link'}, num(t.deadLetters)),
          t.problems.some((p) => p.kind === 'dlq-growing') ? 'bad' : (t.deadLetters ? 'warn' : '')),
        stat('Oldest entry', t.firstEntryAgeMs === null ? '–' : `${dur(t.firstEntryAgeMs)} old`),
        stat('Last publish', t.lastEntryAgeMs === null ? '–' : `${dur(t.lastEntryAgeMs)} ago`),
        stat('Retention', t.retention.replace('-', ' '), t.problems.some((p) => p.kind === 'no-retention') ? 'warn' : '')),
      charts(t),
      h('h2', {}, 'Consumer groups'),
      groups(t));
  }
  fill(main, h('h1', {class: 'with-actions'}, h('span', {class: 'muted'}, 'Topic '), name,
    readOnly ? null : h('span', {class: 'actions'},
      h('button', {class: 'small danger', id: 'delete-topic', onclick: () => deleteTopic(name)}, 'Delete topic…'))), live, lists, browser.el);
  const reload = async () => {
    await loadLists();
    await open(state.open ? ['pending', state.open.group, state.open.id] : null);
    await browser.again();
  };
  await refresh();
  await loadLists();
  await open(rest);
  await browser.again();
  return {refresh, reload, open};
}
