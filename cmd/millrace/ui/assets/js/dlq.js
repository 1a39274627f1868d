// The dead letters of a topic: list, open one, replay or purge.
import {h, fill, get, num, dur, when, enc, dlqHref, topicHref, table, payload, metadata, readOnly, confirm, act, counts, plural, toast} from './util.js';

const pageSize = 100;

function detail(d) {
  const field = (k, v) => [h('dt', {}, k), h('dd', {}, v === '' || v === undefined ? '–' : v)];
  return h('section', {id: 'dead-letter', class: 'detail', 'data-id': d.id},
    h('h2', {}, `Dead letter ${d.id}`),
    h('dl', {class: 'fields'},
      field('Reason', h('span', {id: 'dl-reason'}, d.reason)),
      d.lastError ? field('Last error', h('span', {id: 'dl-last-error', class: 'bad-text'}, d.lastError)) : null,
      field('Group', d.group), field('Consumer', d.consumer),
      field('Deliveries', num(d.deliveries)), field('Original entry', d.originalId), field('From topic', d.topic),
      field('Dead-lettered', when(d.time)), field('UUID', d.uuid)),
    d.foreign ? h('p', {}, h('span', {class: 'badge foreign'}, 'foreign entry'), ' written by another producer: the payload shows its fields') : null,
    d.error ? h('p', {class: 'bad-text'}, `Cannot decode: ${d.error} (replay skips it)`) : null,
    h('h3', {}, 'Metadata'), metadata(d.metadata),
    h('h3', {}, 'Payload'), payload(d));
}

// dlqPage renders the dead letters of topic, with id open, and returns its
// refresh for each round, reload after actions and open for another entry
// of the list (opened in place, under its row).
export async function dlqPage(main, topic, id) {
  const state = {total: null, rows: [], open: id, page: 1, cursors: [''], filtered: false};
  const reason = h('input', {type: 'text', id: 'dlq-reason', size: 22, placeholder: 'reason or last error contains'});
  const group = h('input', {type: 'text', id: 'dlq-group', size: 14, placeholder: 'any group'});
  const since = h('input', {type: 'text', id: 'dlq-since', size: 18, placeholder: 'since (time)'});
  const until = h('input', {type: 'text', id: 'dlq-until', size: 18, placeholder: 'until (time)'});
  const order = h('select', {id: 'dlq-order'}, h('option', {value: 'oldest'}, 'oldest first'), h('option', {value: 'newest'}, 'newest first'));
  const filter = h('form', {class: 'browse-form', id: 'dlq-filter', onsubmit: (e) => { e.preventDefault(); state.page = 1; state.cursors = ['']; reload(); }},
    'Reason ', reason, ' group ', group, ' dead-lettered ', since, ' – ', until, ' ', order, ' ', h('button', {id: 'dlq-apply'}, 'Apply'));
  const notice = h('p', {id: 'dlq-notice', class: 'muted'});
  const list = h('div', {id: 'dlq-list'});
  const top = h('div', {id: 'dlq-open'});
  const selected = () => [...list.querySelectorAll('input[name=dl]:checked')].map((c) => c.value);
  const buttons = h('div', {class: 'toolbar'});
  const b = {};

  // Buttons that would act on nothing are disabled: no selection, or no
  // dead letter at all.
  function updateButtons() {
    if (readOnly) return;
    const n = selected().length;
    b.replaySelected.disabled = b.purgeSelected.disabled = n === 0;
    b.replaySelected.textContent = n ? `Replay ${n} selected` : 'Replay selected';
    b.purgeSelected.textContent = n ? `Purge ${n} selected` : 'Purge selected';
    b.replayAll.disabled = b.purgeAll.disabled = state.total === 0;
  }
  list.addEventListener('change', updateButtons);

  // what is the subject of a dialog: the selection, or every dead letter
  // counted in Redis as the dialog opens.
  async function what(all, verb) {
    if (!all) {
      const ids = selected();
      return ids.length ? {n: ids.length, ids, text: `${plural(ids.length, 'selected dead letter')}`} : null;
    }
    const c = await counts(topic);
    if (!c.deadLetters) {
      toast(`No dead letters in ${topic} to ${verb}.`);
      return null;
    }
    return {n: c.deadLetters, all: true, text: `Every dead letter of ${topic} (${num(c.deadLetters)} now${state.filtered ? ', not only those the filter shows' : ''})`};
  }
  // replay says which groups will see the messages again and offers one
  // group, the one that gave up on them when they share it, or every group
  // (those that had acknowledged a message process it again).
  async function replay(all) {
    const w = await what(all, 'replay');
    if (!w) return;
    let every;
    try { every = (await get(`/api/replaygroups?topic=${enc(topic)}`)).groups; } catch (e) { toast(`Failed: ${e.message}`, true); return; }
    const ids = new Set(w.ids || []);
    const origins = [...new Set(state.rows.filter((d) => all || ids.has(d.id)).map((d) => d.group).filter((g) => g))];
    const origin = origins.length === 1 && every.includes(origins[0]) ? origins[0] : null;
    const pick = h('select', {id: 'replay-group'}, every.map((g) => h('option', {value: g, selected: g === origin}, g)));
    const radio = (value, checked, ...label) => h('label', {class: 'choice'},
      h('input', {type: 'radio', name: 'replay-to', value, checked}), ' ', ...label);
    const seen = h('p', {class: 'what', id: 'replay-groups'});
    const form = h('div', {},
      h('p', {}, `${w.text} will be published again to the topic each came from, as new entries, and removed from the dead letters. ` +
        'Entries that cannot be decoded stay.'),
      every.length ? [
        radio('one', origin !== null || every.length === 1, 'only to group ', pick, origin ? ' (the group that gave up on them)' : ''),
        radio('every', origin === null && every.length > 1, `to every group of ${topic} (${every.length})`),
      ] : null,
      seen);
    const target = () => {
      const r = form.querySelector('input[name=replay-to]:checked');
      return r && r.value === 'one' ? pick.value : '';
    };
    let setEnabled;
    const update = () => {
      const g = target();
      if (!every.length) seen.textContent = `${topic} has no consumer group: the messages wait for the first group created at the oldest entry.`;
      else if (g) seen.textContent = `Seen by group ${g} only: the other groups (${every.filter((x) => x !== g).join(', ') || 'none'}) skip them.`;
      else seen.textContent = `Seen by every group: ${every.join(', ')}. A group that had processed a message processes it again.`;
      setEnabled(true);
    };
    form.addEventListener('change', update);
    const ok = await confirm(all ? `Replay all dead letters of ${topic}` : `Replay ${plural(w.n, 'dead letter')}`,
      form, all ? 'Replay all' : 'Replay', (f) => { setEnabled = f; update(); });
    if (!ok) return;
    const body = all ? {topic, all: true} : {topic, ids: w.ids};
    const g = target();
    if (g) body.group = g;
    await act('/api/replay', body,
      (r) => `Replayed ${r.replayed.length}${g ? ` to group ${g}` : ''}` + (r.skipped.length ? `, skipped ${r.skipped.length}` : '') + (r.missing.length ? `, ${r.missing.length} already gone` : '') + '.');
  }
  async function purge(all) {
    const w = await what(all, 'purge');
    if (!w) return;
    const ok = await confirm(all ? `Purge all dead letters of ${topic}` : `Purge ${plural(w.n, 'dead letter')}`,
      h('p', {class: 'what'}, `${w.text} will be deleted for good. This cannot be undone.`), all ? 'Purge all' : 'Purge');
    if (!ok) return;
    await act('/api/purge', all ? {topic, all: true} : {topic, ids: w.ids}, (r) => `Deleted ${plural(r.deleted, 'dead letter')}.`);
  }
  if (!readOnly) {
    b.replaySelected = h('button', {id: 'replay-selected', onclick: () => replay(false)}, 'Replay selected');
    b.replayAll = h('button', {id: 'replay-all', onclick: () => replay(true)}, 'Replay all');
    b.purgeSelected = h('button', {id: 'purge-selected', class: 'danger', onclick: () => purge(false)}, 'Purge selected');
    b.purgeAll = h('button', {id: 'purge-all', class: 'danger', onclick: () => purge(true)}, 'Purge all');
    buttons.append(b.replaySelected, b.replayAll, b.purgeSelected, b.purgeAll);
  }

  // open shows the dead letter under its row, scrolled into view only if
  // it is not; one not in the list shows above it.
  async function open(openID) {
    state.open = openID;
    list.querySelectorAll('tr.dl-detail').forEach((r) => r.remove());
    list.querySelectorAll('tr.dl-row.open').forEach((r) => r.classList.remove('open'));
    fill(top);
    if (!openID) return;
    let content;
    try { content = detail(await get(`/api/deadletter?topic=${enc(topic)}&id=${enc(openID)}`)); }
    catch (e) { content = h('p', {class: 'muted', id: 'dead-letter-gone'}, `Dead letter ${openID} is gone (${e.message}).`); }
    if (state.open !== openID) return; // another was opened meanwhile
    const row = list.querySelector(`tr.dl-row[data-id="${CSS.escape(openID)}"]`);
    if (!row) {
      fill(top, content);
      return;
    }
    row.classList.add('open');
    const cells = row.children.length;
    const under = h('tr', {class: 'dl-detail'}, h('td', {colspan: cells}, content));
    row.after(under);
    const r = under.getBoundingClientRect(), rowTop = row.getBoundingClientRect().top;
    if (rowTop < 0 || r.bottom > window.innerHeight) row.scrollIntoView({block: 'start'});
  }

  // query is the list's query string from the filter, or null (with the
  // reason shown) when a time is not one.
  function query() {
    const ms = (v) => {
      v = v.trim();
      if (!v) return '';
      if (/^\d+$/.test(v)) return v;
      const iso = v.replace(' ', 'T'), t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + 'Z');
      return isNaN(t) ? null : String(t);
    };
    const s0 = ms(since.value), u0 = ms(until.value);
    if (s0 === null || u0 === null) return null;
    state.filtered = !!(reason.value.trim() || group.value.trim() || s0 || u0);
    return `topic=${enc(topic)}&count=${pageSize}&after=${enc(state.cursors[state.page - 1])}` +
      (order.value === 'newest' ? '&reverse=1' : '') +
      (reason.value.trim() ? `&reason=${enc(reason.value.trim())}` : '') + (group.value.trim() ? `&group=${enc(group.value.trim())}` : '') +
      (s0 ? `&since=${s0}` : '') + (u0 ? `&until=${u0}` : '');
  }

  async function reload() {
    const q = query();
    if (q === null) { fill(list, h('p', {class: 'bad-text', id: 'dlq-filter-error'}, 'Since and until take a time like 2026-12-07 03:00 (UTC) or Unix milliseconds.')); return; }
    const {deadLetters, total, next, scanned} = await get(`/api/deadletters?${q}`);
    state.total = total;
    state.rows = deadLetters;
    list.dataset.page = state.page;
    list.dataset.query = q;
    const checked = new Set(selected());
    notice.textContent = '';
    const row = (d) => h('tr', {class: 'dl-row', 'data-id': d.id},
      h('td', {}, readOnly ? '' : h('input', {type: 'checkbox', name: 'dl', value: d.id, checked: checked.has(d.id)})),
      h('td', {class: 'mono'}, h('a', {href: dlqHref(topic, d.id)}, d.id)),
      h('td', {}, `${dur(Date.now() - d.time)} ago`),
      h('td', {class: 'reason'}, d.error ? `cannot decode: ${d.error}` : d.reason,
        d.lastError ? h('div', {class: 'last-error bad-text', title: d.lastError}, d.lastError.length > 80 ? d.lastError.slice(0, 79) + '…' : d.lastError) : null),
      h('td', {}, d.group), h('td', {}, d.consumer), h('td', {class: 'num'}, num(d.deliveries)),
      h('td', {class: 'mono'}, d.uuid));
    const selectAll = readOnly ? '' : h('input', {type: 'checkbox', id: 'select-all', title: 'Select all shown',
      onchange: (e) => list.querySelectorAll('input[name=dl]').forEach((c) => { c.checked = e.target.checked; })});
    fill(list, deadLetters.length
      ? table([selectAll, 'ID', 'Dead-lettered', 'Reason / last error', 'Group', 'Consumer', 'Deliveries', 'UUID'],
        deadLetters.map(row), {class: 'grid', id: 'dead-letters'})
      : h('p', {class: 'muted', id: 'dlq-empty'}, total === 0 ? `No dead letters in ${topic}.` : 'No dead letter on this page matches the filter.'));
    const first = (state.page - 1) * pageSize;
    list.append(h('div', {class: 'toolbar pager'},
      h('span', {class: 'muted', id: 'dlq-more'}, state.filtered
        ? `Page ${state.page}: ${plural(deadLetters.length, 'match', 'matches')} among ${num(scanned)} read, of ${plural(total, 'dead letter')}.`
        : (total > deadLetters.length || state.page > 1
          ? `Page ${state.page}: ${num(first + (deadLetters.length ? 1 : 0))}–${num(first + deadLetters.length)} of ${num(total)}, ${order.value} first.`
          : '')),
      state.page > 1 ? h('button', {class: 'small', id: 'dlq-prev', onclick: () => { state.page--; reload(); }}, '← Previous') : null,
      next ? h('button', {class: 'small', id: 'dlq-next', onclick: () => { state.cursors[state.page] = next; state.page++; reload(); }}, 'Next →') : null));
    updateButtons();
    await open(state.open);
  }
  // refresh tells when the count changed since the list was read.
  async function refresh() {
    const {topic: t} = await get(`/api/topic?topic=${enc(topic)}`);
    if (state.total !== null && t.deadLetters !== state.total) {
      fill(notice, `${num(t.deadLetters)} dead letters now. `, h('button', {class: 'small', onclick: reload}, 'Reload'));
    }
  }
  fill(main,
    h('h1', {}, h('span', {class: 'muted'}, 'Dead letters of '), h('a', {href: topicHref(topic)}, topic)),
    buttons, filter, notice, top, list);
  await reload();
  return {refresh, reload, open};
}
