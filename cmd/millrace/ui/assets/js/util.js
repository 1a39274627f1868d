// Helpers shared by the pages: DOM building, formatting, the JSON API,
// the confirmation dialog and the toast.

const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
export const csrf = meta('millrace-csrf');
export const readOnly = meta('millrace-read-only') === 'true';

// h builds an element: h('td', {class: 'num'}, 'text', child...). Strings
// become text nodes, never HTML.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...nodes(children));
  return el;
}

// nodes flattens children to nodes: strings become text, null, undefined,
// false and '' are left out.
function nodes(children) {
  return children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false && c !== '')
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

// fill replaces the children of el, as h takes them.
export function fill(el, ...children) {
  el.replaceChildren(...nodes(children));
}

export const enc = encodeURIComponent;
export const topicHref = (t) => `#/topic/${enc(t)}`;
export const dlqHref = (t, id) => `#/dlq/${enc(t)}` + (id ? `/${enc(id)}` : '');

// dur formats milliseconds like the CLI: 850ms, 42s, 3m05s, 2h10m, 4d03h.
export function dur(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const s = Math.floor(ms / 1000), p = (n) => String(n).padStart(2, '0');
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${p(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${p(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${p(Math.floor(s / 3600) % 24)}h`;
}

export const num = (n) => (n === null || n === undefined ? '–' : n.toLocaleString('en-US'));
export function rate(r) {
  if (r === null || r === undefined) return '–';
  return r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString('en-US');
}
// lagText is a lag with a "+" when it is a lower bound (the count stopped
// at its cap).
export const lagText = (lag, lowerBound) => (lag === null || lag === undefined ? '–' : num(lag) + (lowerBound ? '+' : ''));

// counts reads a topic's figures from Redis now, for a dialog.
export const counts = (topic) => get(`/api/counts?topic=${enc(topic)}`);

export const plural = (n, one, many) => `${num(n)} ${n === 1 ? one : (many || one + 's')}`;

export const when = (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');

// problemText phrases a problem the server found.
export function problemText(p) {
  const g = p.group ? `group ${p.group}: ` : '';
  switch (p.kind) {
    case 'behind': return `${g}falling behind, the oldest unread entry has waited ${dur(p.value)}`;
    case 'lag-growing': return `${g}lag growing, ${num(p.from)} → ${num(p.value)} in ${dur(p.spanMs)}`;
    case 'old-pending': return `${g}oldest pending entry is ${dur(p.value)} old`;
    case 'dlq-growing': return `dead letters growing, ${num(p.from)} → ${num(p.value)} in ${dur(p.spanMs)}`;
    case 'dead-letters': return `${num(p.value)} dead letter${p.value === 1 ? '' : 's'}`;
    case 'no-retention': return `no retention: ${num(p.value)} entries, none ever removed`;
    case 'paused': return `${g}paused${p.from ? ` since ${when(p.from)}` : ''}, ${plural(p.value, 'entry', 'entries')} waiting`;
    case 'beyond-end': return `${g}position beyond the end of the stream: it skips every new message until the stream reaches it; reset it`;
    case 'abandoned': return `${g}abandoned: no consumer seen for a long time, ${num(p.value)} entries unread; delete it unless it is coming back`;
    case 'dropped': return p.spanMs
      ? `${g}lost entries to the topic's ceiling, ${num(p.from)} → ${num(p.value)} in ${dur(p.spanMs)}`
      : `${g}${plural(p.value, 'entry', 'entries')} trimmed by the topic's ceiling before it read them`;
    case 'refused': return p.spanMs
      ? `publishes refused at the topic's ceiling, ${num(p.from)} → ${num(p.value)} in ${dur(p.spanMs)}`
      : `${plural(p.value, 'publish', 'publishes')} refused at the topic's ceiling`;
  }
  return p.kind;
}

export async function get(path) {
  const res = await fetch(path, {headers: {Accept: 'application/json'}});
  if (!res.ok) throw new Error(`${res.status}: ${(await res.text()).trim()}`);
  return res.json();
}

export async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: {'Content-Type': 'application/json', 'X-Millrace-Csrf': csrf},
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${res.status}: ${(await res.text()).trim()}`);
  return res.json();
}

let toastTimer;
export function toast(text, bad) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = bad ? 'show bad' : 'show';
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = ''; }, bad ? 8000 : 4000);
}

// confirm shows the dialog with title, body (nodes) and the confirm
// button's label, and resolves true when confirmed. onOpen(setEnabled)
// may disable the button until a form in body is valid.
export function confirm(title, body, label, onOpen) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  fill(document.getElementById('confirm-body'), body);
  const ok = document.getElementById('confirm-ok');
  ok.textContent = label;
  ok.disabled = false;
  if (onOpen) onOpen((on) => { ok.disabled = !on; });
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), {once: true});
  });
}

// act posts an action after confirmation and reports how it went.
export async function act(path, body, done) {
  try {
    const res = await post(path, body);
    toast(done(res));
    document.dispatchEvent(new Event('millrace:acted'));
    return res;
  } catch (e) {
    toast(`Failed: ${e.message}`, true);
    return null;
  }
}

export function table(headers, rows, attrs) {
  return h('table', attrs, h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))), h('tbody', {}, rows));
}

// payload shows a message's payload: text, pretty JSON, or base64.
export function payload(m) {
  if (m.payloadBase64 !== undefined) return h('pre', {class: 'payload'}, h('span', {class: 'badge'}, 'base64'), ' ', m.payloadBase64);
  let text = m.payload || '';
  try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON: as is */ }
  return h('pre', {class: 'payload'}, text);
}

export function metadata(md) {
  const keys = Object.keys(md || {}).sort();
  if (keys.length === 0) return h('p', {class: 'muted'}, 'no metadata');
  return h('dl', {class: 'metadata'}, keys.map((k) => [h('dt', {}, k), h('dd', {}, md[k])]));
}
