// The console's router and live updates: one event stream per tab tells of
// each sampling round; the page shown then reads its figures again.
import {h, fill} from './util.js';
import {overview} from './overview.js';
import {topicPage} from './topic.js';
import {dlqPage} from './dlq.js';

const main = document.getElementById('main');
const live = document.getElementById('live');
let current = {refresh: null, reload: null};
let rendering = Promise.resolve();

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  switch (parts[0]) {
    case 'topic': return () => topicPage(main, parts[1]);
    case 'dlq': return () => dlqPage(main, parts[1], parts[2]);
    default: return () => overview(main).then(() => ({refresh: () => overview(main), reload: null}));
  }
}

function show(err) {
  fill(main, h('h1', {}, 'Error'), h('p', {class: 'bad-text'}, err.message));
}

async function navigate() {
  current = {refresh: null, reload: null};
  rendering = route()().then((p) => { current = p; }, show);
  await rendering;
  document.body.dataset.page = location.hash || '#/';
}

// After an action, reload the lists the page read from Redis.
document.addEventListener('millrace:acted', () => { if (current.reload) current.reload().catch(show); });

window.addEventListener('hashchange', navigate);
navigate();

const events = new EventSource('/api/events');
events.addEventListener('round', (e) => {
  live.textContent = `live · round ${e.data} · ${new Date().toLocaleTimeString()}`;
  live.className = 'live on';
  rendering.then(() => { if (current.refresh) return current.refresh(); }).catch(() => {});
});
events.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.className = 'live off'; });
