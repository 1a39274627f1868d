// The dead letters of a topic: list, open one, replay or purge.
import {h, fill, get, num, dur, when, enc, dlqHref, topicHref, table, payload, metadata, readOnly, confirm, act} from './util.js';

function detail(d) {
  const field = (k, v) => [h('dt', {}, k), h('dd', {}, v === '' || v === undefined ? '–' : v)];
  return h('section', {id: 'dead-letter', class: 'detail', 'data-id': d.id},
    h('h2', {}, `Dead letter ${d.id}`),
    h('dl', {class: 'fields'},
      field('Reason', h('span', {id: 'dl-reason'}, d.reason)), field('Group', d.group), field('Consumer', d.consumer),
      field('Deliveries', num(d.deliveries)), field('Original entry', d.originalId), field('From topic', d.topic),
      field('Dead-lettered', when(d.time)), field('UUID', d.uuid)),
    d.foreign ? h('p', {}, h('span', {class: 'badge foreign'}, 'foreign entry'), ' written by another producer: the payload shows its fields') : null,
    d.error ? h('p', {class: 'bad-text'}, `Cannot decode: ${d.error} (replay skips it)`) : null,
    h('h3', {}, 'Metadata'), metadata(d.metadata),
    h('h3', {}, 'Payload'), payload(d));
}

// dlqPage renders the dead letters of topic, with id open, and returns its
// refresh for each round and reload after actions.
export async function dlqPage(main, topic, id) {
  const state = {count: null};
  const notice = h('p', {id: 'dlq-notice', class: 'muted'});
  const list = h('div', {id: 'dlq-list'});
  const open = h('div', {id: 'dlq-open'});
  const selected = () => [...list.querySelectorAll('input[name=dl]:checked')].map((c) => c.value);
  const buttons = h('div', {class: 'toolbar'});

  async function replay(all) {
    const ids = selected(), n = all ? state.count : ids.length;
    const ok = await confirm(all ? `Replay all dead letters of ${topic}` : `Replay ${n} dead letter${n === 1 ? '' : 's'}`,
      h('p', {class: 'what'}, `${all ? `Every dead letter of ${topic} (${num(n)} now)` : `${n} selected dead letter${n === 1 ? '' : 's'}`} ` +
        'will be published again to the topic each came from, as new entries, and removed from the dead letters. ' +
        'Entries that cannot be decoded stay.'), all ? 'Replay all' : 'Replay');
    if (!ok) return;
    await act('/api/replay', all ? {topic, all: true} : {topic, ids},
      (r) => `Replayed ${r.replayed.length}` + (r.skipped.length ? `, skipped ${r.skipped.length}` : '') + (r.missing.length ? `, ${r.missing.length} already gone` : '') + '.');
  }
  async function purge(all) {
    const ids = selected(), n = all ? state.count : ids.length;
    const ok = await confirm(all ? `Purge all dead letters of ${topic}` : `Purge ${n} dead letter${n === 1 ? '' : 's'}`,
      h('p', {class: 'what'}, `${all ? `Every dead letter of ${topic} (${num(n)} now)` : `${n} selected dead letter${n === 1 ? '' : 's'}`} ` +
        'will be deleted for good. This cannot be undone.'), all ? 'Purge all' : 'Purge');
    if (!ok) return;
    await act('/api/purge', all ? {topic, all: true} : {topic, ids}, (r) => `Deleted ${r.deleted} dead letter${r.deleted === 1 ? '' : 's'}.`);
  }
  if (!readOnly) {
    buttons.append(
      h('button', {id: 'replay-selected', onclick: () => replay(false)}, 'Replay selected'),
      h('button', {id: 'replay-all', onclick: () => replay(true)}, 'Replay all'),
      h('button', {id: 'purge-selected', class: 'danger', onclick: () => purge(false)}, 'Purge selected'),
      h('button', {id: 'purge-all', class: 'danger', onclick: () => purge(true)}, 'Purge all'));
  }

  async function reload() {
    const {deadLetters} = await get(`/api/deadletters?topic=${enc(topic)}&count=200`);
    state.count = deadLetters.length;
    notice.textContent = '';
    const row = (d) => h('tr', {class: d.id === id ? 'dl-row open' : 'dl-row', 'data-id': d.id},
      h('td', {}, readOnly ? '' : h('input', {type: 'checkbox', name: 'dl', value: d.id})),
      h('td', {class: 'mono'}, h('a', {href: dlqHref(topic, d.id)}, d.id)),
      h('td', {}, `${dur(Date.now() - d.time)} ago`),
      h('td', {class: 'reason'}, d.error ? `cannot decode: ${d.error}` : d.reason),
      h('td', {}, d.group), h('td', {}, d.consumer), h('td', {class: 'num'}, num(d.deliveries)),
      h('td', {class: 'mono'}, d.uuid));
    const selectAll = readOnly ? '' : h('input', {type: 'checkbox', id: 'select-all', title: 'Select all',
      onchange: (e) => list.querySelectorAll('input[name=dl]').forEach((c) => { c.checked = e.target.checked; })});
    fill(list, deadLetters.length
      ? table([selectAll, 'ID', 'Dead-lettered', 'Reason', 'Group', 'Consumer', 'Deliveries', 'UUID'],
        deadLetters.map(row), {class: 'grid', id: 'dead-letters'})
      : h('p', {class: 'muted', id: 'dlq-empty'}, `No dead letters in ${topic}.`));
    if (deadLetters.length === 200) list.append(h('p', {class: 'muted'}, 'Showing the oldest 200.'));
    if (id) {
      try { fill(open, detail(await get(`/api/deadletter?topic=${enc(topic)}&id=${enc(id)}`))); }
      catch (e) { fill(open, h('p', {class: 'muted'}, `Dead letter ${id} is gone (${e.message}).`)); }
    } else fill(open);
  }
  // refresh tells when the count changed since the list was read.
  async function refresh() {
    const {topic: t} = await get(`/api/topic?topic=${enc(topic)}`);
    if (state.count !== null && state.count < 200 && t.deadLetters !== state.count) {
      fill(notice, `${num(t.deadLetters)} dead letters now. `, h('button', {class: 'small', onclick: reload}, 'Reload'));
    }
  }
  fill(main, 
    h('h1', {}, h('span', {class: 'muted'}, 'Dead letters of '), h('a', {href: topicHref(topic)}, topic)),
    buttons, notice, list, open);
  await reload();
  return {refresh, reload};
}
