// Small helpers shared by the views: building DOM safely (text is never parsed as HTML, so
// message contents cannot inject markup), talking to the JSON API, and formatting numbers.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.setAttribute('class', value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** h('div', {class: 'x', onclick}, 'text', child) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request(method, path, body) {
  const init = { method, headers: {} };
  if (method !== 'GET') {
    // The API refuses changes without this content type (it is what keeps other sites out).
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text === '' ? null : JSON.parse(text);
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.code ?? 'HTTP_' + response.status, error.message ?? response.statusText);
  }
  return data;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body) => request('POST', path, body),
  del: (path) => request('DELETE', path),
};

export function enc(name) {
  return encodeURIComponent(name);
}

export function toast(message, kind = 'info') {
  const box = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  document.getElementById('toasts').append(box);
  setTimeout(() => box.remove(), kind === 'error' ? 7000 : 4000);
}

export function errorText(error) {
  return error instanceof ApiError ? `${error.message} (${error.code})` : String(error?.message ?? error);
}

// ---- formatting ---------------------------------------------------------------------------

const integer = new Intl.NumberFormat('en-US');

export function fmtInt(value) {
  return value === undefined || value === null ? '–' : integer.format(Math.round(value));
}

/** 1234 → "1.23k", for rates and big counts in cards. */
export function fmtCompact(value) {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1e9) return (value / 1e9).toFixed(2) + 'G';
  if (abs >= 1e6) return (value / 1e6).toFixed(2) + 'M';
  if (abs >= 1e4) return (value / 1e3).toFixed(1) + 'k';
  if (abs >= 100) return integer.format(Math.round(value));
  if (abs >= 10) return value.toFixed(1).replace(/\.0$/, '');
  return value.toFixed(abs === 0 ? 0 : 2).replace(/\.?0+$/, '') || '0';
}

export function fmtBytes(value) {
  if (value === undefined || value === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  let scaled = value;
  while (Math.abs(scaled) >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? Math.round(scaled) : scaled.toFixed(scaled >= 100 ? 0 : 1)} ${units[unit]}`;
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function fmtTime(ms) {
  const date = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function fmtRetention(retention) {
  const parts = [];
  if (retention?.ageMs !== undefined) parts.push(`age ${fmtDuration(retention.ageMs)}`);
  if (retention?.bytesMax !== undefined) parts.push(`size ${fmtBytes(retention.bytesMax)}`);
  if (retention?.recordsMax !== undefined) parts.push(`${fmtInt(retention.recordsMax)} msgs`);
  return parts.length === 0 ? 'keep all' : parts.join(', ');
}

export function table(columns, rows, options = {}) {
  if (rows.length === 0) return h('div', { class: 'empty' }, options.empty ?? 'Nothing here yet.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { 'data-testid': options.testid },
      h('thead', null, h('tr', null, columns.map((column) => h('th', { class: column.num ? 'num' : undefined }, column.title)))),
      h(
        'tbody',
        null,
        rows.map((row) => {
          const tr = h('tr', { 'data-testid': options.rowTestid, 'data-key': options.key?.(row) });
          for (const column of columns) tr.append(h('td', { class: column.num ? 'num' : column.class, 'data-col': column.id }, column.render(row)));
          options.decorate?.(tr, row);
          return tr;
        }),
      ),
    ),
  );
}

export function card(label, value, sub, options = {}) {
  return h(
    'div',
    { class: 'panel card', 'data-testid': options.testid },
    h('div', { class: 'label' }, label),
    h('div', { class: `value ${options.tone ?? ''}`, 'data-testid': options.testid ? options.testid + '-value' : undefined }, value),
    sub === undefined ? null : h('div', { class: 'sub' }, sub),
  );
}

export function panel(title, body, actions) {
  return h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, title), actions ?? null), body);
}

export function flushPanel(title, body, actions) {
  return h('section', { class: 'panel flush' }, h('div', { class: 'panel-head' }, h('h2', null, title), actions ?? null), body);
}
