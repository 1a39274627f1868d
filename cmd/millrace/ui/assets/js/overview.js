// The overview: every topic and its groups in one table, problems first.
import {h, fill, get, num, rate, dur, lagText, problemText, topicHref, dlqHref, table, readOnly} from './util.js';
import {sparkline} from './chart.js';
import {deleteGroup} from './groups.js';

// cellClass marks a cell that shows a problem of kind (for group, or the
// topic when group is undefined).
function cellClass(problems, kinds, group) {
  const hit = problems.filter((p) => kinds.includes(p.kind) && (group === undefined || p.group === group));
  if (hit.some((p) => p.level === 'bad')) return 'num bad';
  if (hit.length) return 'num warn';
  return 'num';
}

function topicRows(t) {
  const maxLag = t.groups.length ? Math.max(...t.groups.map((g) => g.lag)) : null;
  // The topic's lag is its groups' largest: a lower bound, as on the
  // group's row, when any group's count stopped at its cap.
  const maxLowerBound = t.groups.some((g) => g.lagSource === 'lower-bound');
  const pending = t.groups.reduce((n, g) => n + g.pending, 0);
  const oldest = t.groups.length ? Math.max(...t.groups.map((g) => g.oldestPendingAgeMs)) : null;
  const p = t.problems;
  const rows = [h('tr', {class: 'topic-row', 'data-topic': t.name},
    h('td', {}, h('a', {href: topicHref(t.name), 'data-topic': t.name}, t.name), t.exists ? '' : h('span', {class: 'badge'}, 'no stream')),
    h('td', {class: 'num'}, num(t.length)),
    h('td', {class: 'num'}, rate(t.in)),
    h('td', {class: 'num'}, rate(t.out)),
    h('td', {}, sparkline(t.series.t, [{values: t.series.in, cls: 's-in'}, {values: t.series.out, cls: 's-out'}])),
    h('td', {class: 'num'}, t.groups.length),
    h('td', {class: cellClass(p, ['behind', 'lag-growing'])}, lagText(maxLag, maxLowerBound)),
    h('td', {class: 'num'}, num(pending)),
    h('td', {class: cellClass(p, ['old-pending'])}, pending ? dur(oldest) : '–'),
    h('td', {class: cellClass(p, ['dlq-growing', 'dead-letters'])},
      t.deadLetters ? h('a', {href: dlqHref(t.name), 'data-dlq': t.name}, num(t.deadLetters)) : '0'),
    h('td', {class: cellClass(p, ['no-retention']).replace('num', '')}, t.retention.replace('-', ' ')),
  )];
  for (const g of t.groups) {
    rows.push(h('tr', {class: 'group-row', 'data-group': `${t.name}/${g.name}`},
      h('td', {class: 'group-name'}, '↳ ', g.name, g.paused ? h('span', {class: 'badge warn', 'data-state': 'paused'}, 'paused') : null),
      h('td', {}), h('td', {}),
      h('td', {class: 'num'}, rate(g.out)),
      h('td', {}), h('td', {class: 'num muted'}, `${g.consumers.length} cons.`),
      h('td', {class: cellClass(p, ['behind', 'lag-growing'], g.name)}, lagText(g.lag, g.lagSource === 'lower-bound')),
      h('td', {class: 'num'}, num(g.pending)),
      h('td', {class: cellClass(p, ['old-pending'], g.name)}, g.pending ? dur(g.oldestPendingAgeMs) : '–'),
      h('td', {}), h('td', {}),
    ));
  }
  return rows;
}

export async function overview(main, shown) {
  const o = await get('/api/overview');
  if (!shown()) return;
  const problems = o.topics.flatMap((t) => t.problems.map((p) => ({...p, topic: t.name})));
  const bad = problems.filter((p) => p.level === 'bad');
  const box = h('section', {id: 'problems', class: bad.length ? 'problems bad' : 'problems'},
    h('h2', {}, problems.length ? `Problems (${problems.length})` : 'No problems'),
    problems.length ? h('ul', {}, problems.map((p) => h('li', {class: p.level, 'data-kind': p.kind, 'data-group': p.group ? `${p.topic}/${p.group}` : null},
      h('a', {href: ['dlq-growing', 'dead-letters'].includes(p.kind) ? dlqHref(p.topic) : topicHref(p.topic)}, p.topic), ': ', problemText(p),
      p.kind === 'abandoned' && !readOnly
        ? [' ', h('button', {class: 'small danger', 'data-action': 'delete-group', onclick: () => deleteGroup(p.topic, p.group)}, `Delete group ${p.group}…`)]
        : null))) : null);
  const body = o.topics.length
    ? table(['Topic', 'Length', 'In /s', 'Out /s', 'Last 5 min', 'Groups', 'Lag', 'Pending', 'Oldest pending', 'Dead letters', 'Retention'],
      o.topics.flatMap(topicRows), {id: 'topics', class: 'grid'})
    : h('p', {class: 'muted', id: 'topics-empty'}, o.seq ? 'No topics: no stream in this database.' : 'Reading the topics…');
  fill(main, 
    h('h1', {}, 'Topics'),
    o.error ? h('p', {class: 'bad-text'}, `Cannot read Redis: ${o.error}`) : null,
    box, body,
    h('p', {class: 'muted legend'}, h('span', {class: 'key s-in'}, 'in: entries added'), ' ',
      h('span', {class: 'key s-out'}, 'out: entries read by all groups'), ` · every ${dur(o.intervalMs)}`),
  );
}
