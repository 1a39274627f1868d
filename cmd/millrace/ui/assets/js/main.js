// The console's router and live updates: one event stream per tab tells of
// each sampling round; the page shown then reads its figures again.
import {h, fill, dur} from './util.js';
import {overview} from './overview.js';
import {topicPage} from './topic.js';
import {dlqPage} from './dlq.js';

const main = document.getElementById('main');
const live = document.getElementById('live');
let current = {refresh: null, reload: null};
let rendering = Promise.resolve();
let shownKey = null;
let generation = 0;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  switch (parts[0]) {
    case 'topic': return {key: `topic/${parts[1]}`, arg: parts.slice(2), page: () => topicPage(main, parts[1], parts.slice(2))};
    case 'dlq': return {key: `dlq/${parts[1]}`, arg: parts[2], page: () => dlqPage(main, parts[1], parts[2])};
    default: {
      // The overview fills main itself: a refresh still reading when
      // another page was opened must not draw over it.
      const token = ++generation, shown = () => token === generation;
      return {key: 'overview', page: () => overview(main, shown).then(() => ({refresh: () => overview(main, shown), reload: null}))};
    }
  }
}

function show(err) {
  fill(main, h('h1', {}, 'Error'), h('p', {class: 'bad-text'}, err.message));
}

// navigate shows the page of the location. Within the page shown (an
// entry opened on the same list), the page opens it in place: the list
// keeps its scroll position.
async function navigate() {
  const r = route();
  if (r.key === shownKey && current.open) {
    await rendering;
    await current.open(r.arg);
    document.body.dataset.page = location.hash || '#/';
    return;
  }
  shownKey = r.key;
  if (r.key !== 'overview') generation++;
  current = {refresh: null, reload: null};
  rendering = r.page().then((p) => { current = p; }, show);
  await rendering;
  document.body.dataset.page = location.hash || '#/';
}

// After an action, reload the lists the page read from Redis.
document.addEventListener('millrace:acted', () => {
  const page = current;
  if (page.reload) page.reload().catch((e) => { if (current === page) show(e); });
});

window.addEventListener('hashchange', navigate);
navigate();

// Each round tells whether it read Redis: the header says "live" only then,
// and since when Redis is unreachable otherwise (the figures shown are
// from before).
const events = new EventSource('/api/events');
events.addEventListener('round', (e) => {
  const r = JSON.parse(e.data);
  if (r.downSince) {
    live.textContent = `Redis unreachable since ${new Date(r.downSince).toLocaleTimeString()} (${dur(Date.now() - r.downSince)}) · figures from before`;
    live.title = r.error || '';
    live.className = 'live down';
  } else {
    live.textContent = `live · round ${r.seq} · ${new Date().toLocaleTimeString()}`;
    live.title = '';
    live.className = 'live on';
  }
  rendering.then(() => { if (current.refresh) return current.refresh(); }).catch(() => {});
});
events.addEventListener('error', () => { live.textContent = 'console unreachable, reconnecting…'; live.className = 'live off'; });
