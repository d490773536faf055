// DOM building, formatting and hand-drawn charts for the management UI.
// Every name and payload shown comes from the broker and is untrusted: text goes in through
// textContent (h()), never as HTML.

export const $ = (sel) => document.querySelector(sel);

/** Create an element: h('td', {class: 'num'}, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  if (attrs.id && (tag === 'input' || tag === 'textarea' || tag === 'select')) keep(el);
  return el;
}

/**
 * Views are rebuilt on every refresh; form fields keep what the user entered (per page) so a
 * refresh never throws typing away.
 */
const fieldValues = new Map();
export function keep(el) {
  const key = `${location.hash} ${el.id}`;
  const checkbox = el.type === 'checkbox';
  if (fieldValues.has(key)) {
    if (checkbox) el.checked = fieldValues.get(key);
    else el.value = fieldValues.get(key);
  }
  const save = () => fieldValues.set(key, checkbox ? el.checked : el.value);
  el.addEventListener('input', save);
  el.addEventListener('change', save);
}

// ------------------------------------------------------------------ formatting

export function fmtNum(n) {
  if (n === undefined || n === null) return '';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 });
}

export function fmtRate(details) {
  return details ? `${fmtNum(details.rate)}/s` : '';
}

export function fmtBytes(n) {
  if (n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function flash(text, ok = true) {
  const f = $('#flash');
  f.textContent = text;
  f.className = ok ? 'ok' : 'bad';
}

/** A table; columns are [header, cell(row), numeric?]. */
export function table(rows, columns, rowAttrs = () => ({})) {
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map(([title, , num]) => h('th', { class: num ? 'num' : '' }, title)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.length === 0
        ? h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'None'))
        : rows.map((r) =>
            h(
              'tr',
              rowAttrs(r),
              columns.map(([, cell, num]) => h('td', { class: num ? 'num' : '' }, cell(r))),
            ),
          ),
    ),
  );
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h3', {}, title) : null, ...children);
}

export function field(label, input) {
  return h('label', {}, label, input);
}

// ------------------------------------------------------------------ charts

const COLORS = ['#b3541e', '#1f77b4', '#2e7d32', '#8e44ad'];

/** A line chart on a canvas: series = [{label, values}], x = timestamps (ms). */
export function lineChart(series, times, unit) {
  const canvas = h('canvas', { class: 'chart' });
  const legend = h(
    'div',
    { class: 'legend' },
    series.map((s, i) => {
      const last = s.values.length ? s.values[s.values.length - 1] : 0;
      return h(
        'span',
        {},
        h('i', { style: `background:${COLORS[i]}` }),
        `${s.label} ${fmtNum(last)}${unit}`,
      );
    }),
  );
  requestAnimationFrame(() => drawChart(canvas, series, times));
  return h('div', {}, canvas, legend);
}

function drawChart(canvas, series, times) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const hgt = canvas.clientHeight;
  if (w === 0) return;
  canvas.width = w * dpr;
  canvas.height = hgt * dpr;
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  const left = 48;
  const bottom = 20;
  const top = 8;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const niceMax = niceCeil(max);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#687384';
  g.strokeStyle = '#e4e8ee';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ((hgt - top - bottom) * i) / 4;
    g.beginPath();
    g.moveTo(left, y + 0.5);
    g.lineTo(w, y + 0.5);
    g.stroke();
    g.fillText(fmtNum(niceMax * (1 - i / 4)), 2, y + 4);
  }
  if (times.length > 1) {
    const span = (times[times.length - 1] - times[0]) / 1000;
    g.fillText(`last ${Math.round(span)} s`, left, hgt - 4);
  }
  const n = times.length;
  series.forEach((s, idx) => {
    g.strokeStyle = COLORS[idx];
    g.lineWidth = 2;
    g.beginPath();
    s.values.forEach((v, i) => {
      const x = left + (n <= 1 ? 0 : ((w - left - 4) * i) / (n - 1));
      const y = top + (hgt - top - bottom) * (1 - v / niceMax);
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
  });
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function stat(label, value, id) {
  return h(
    'div',
    { class: 'stat', id },
    h('div', { class: 'value' }, value ?? ''),
    h('div', { class: 'label' }, label),
  );
}
