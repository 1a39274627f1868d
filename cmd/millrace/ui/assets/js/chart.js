// Line charts drawn as inline SVG: a few lines of our own instead of a
// chart library.
import {h} from './util.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

// paths turns values (null = gap) into SVG path data scaled to the box.
function path(t, values, x, y) {
  let d = '', pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) { pen = false; return; }
    d += `${pen ? 'L' : 'M'}${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

function extent(t, series) {
  let top = 0;
  for (const se of series) for (const v of se.values) if (v !== null && v > top) top = v;
  return {t0: t[0], t1: Math.max(t[t.length - 1], t[0] + 1), top: top || 1};
}

// sparkline is a small chart without axes: series of {values, cls}.
export function sparkline(t, series, width = 140, height = 30) {
  const svg = s('svg', {class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img'});
  if (t.length < 2) return svg;
  const {t0, t1, top} = extent(t, series);
  const x = (v) => ((v - t0) / (t1 - t0)) * (width - 2) + 1;
  const y = (v) => height - 2 - (v / top) * (height - 4);
  for (const se of series) svg.append(s('path', {d: path(t, se.values, x, y), class: `line ${se.cls}`}));
  return svg;
}

// chart is a line chart with a y scale, the time span and a legend:
// series of {name, values, cls}; format formats the y labels.
export function chart(title, t, series, format) {
  const W = 560, H = 170, L = 48, R = 8, T = 10, B = 22;
  const svg = s('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title});
  const box = h('figure', {class: 'chart-box'}, h('figcaption', {}, title), svg);
  if (t.length < 2) {
    box.append(h('p', {class: 'muted'}, 'Collecting data…'));
    return box;
  }
  const {t0, t1, top} = extent(t, series);
  const x = (v) => L + ((v - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / top) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    svg.append(s('line', {x1: L, x2: W - R, y1: y(top * f), y2: y(top * f), class: 'grid'}));
    svg.append(s('text', {x: L - 6, y: y(top * f) + 4, class: 'tick', 'text-anchor': 'end'}, format(top * f)));
  }
  const minutes = Math.round((t1 - t0) / 60000);
  svg.append(s('text', {x: L, y: H - 6, class: 'tick'}, minutes >= 1 ? `${minutes} min ago` : `${Math.round((t1 - t0) / 1000)} s ago`));
  svg.append(s('text', {x: W - R, y: H - 6, class: 'tick', 'text-anchor': 'end'}, 'now'));
  for (const se of series) svg.append(s('path', {d: path(t, se.values, x, y), class: `line ${se.cls}`}));
  box.append(h('div', {class: 'legend'}, series.map((se) => h('span', {class: `key ${se.cls}`}, se.name))));
  return box;
}
