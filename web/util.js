// Shared helpers: DOM building, API calls, formatting.

/** Builds an element. attrs: class, text, on<event>, data-*, any attribute; kids: nodes or text. */
export function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'value') e.value = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/** An error from the API (or the network), with Prometheus's errorType when there is one. */
export class ApiError extends Error {
  constructor(message, type, status) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

/**
 * GETs `path` (relative to the route prefix) with `params` (object; arrays repeat the key) and
 * returns the whole envelope ({status, data, warnings, infos}).
 */
export async function api(path, params, init) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, v);
  }
  const qs = q.toString();
  let resp;
  try {
    resp = await fetch(path + (qs ? '?' + qs : ''), { cache: 'no-store', ...init });
  } catch (e) {
    throw new ApiError('cannot reach the server: ' + e.message, 'network', 0);
  }
  const text = await resp.text();
  let body;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    throw new ApiError(`unexpected response (HTTP ${resp.status}): ${text.slice(0, 300)}`, 'internal', resp.status);
  }
  if (!resp.ok || body.status === 'error') {
    throw new ApiError(body.error || `HTTP ${resp.status}`, body.errorType || 'internal', resp.status);
  }
  return body;
}

/** An error box as Prometheus shows it. */
export function errorBox(e, prefix) {
  const msg = e instanceof Error ? e.message : String(e);
  return h('div', { class: 'alert error', role: 'alert' }, h('strong', {}, prefix || 'Error'), ': ', msg);
}

/** Loads a page's data, showing a loading line, then an error box or the rendered content. */
export async function load(root, fn) {
  const loading = h('p', { class: 'muted' }, 'Loading…');
  root.append(loading);
  try {
    await fn();
  } catch (e) {
    root.append(errorBox(e));
  } finally {
    loading.remove();
    root.dataset.loaded = '1';
  }
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** `YYYY-MM-DD HH:MM:SS` in UTC (Prometheus's URL and display format). */
export function fmtTime(ms) {
  const d = new Date(ms);
  if (isNaN(d)) return String(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** Parses `YYYY-MM-DD HH:MM[:SS]` (UTC), RFC 3339 or Unix seconds; null when it is none. */
export function parseTime(s) {
  if (s === null || s === undefined) return null;
  s = String(s).trim();
  if (!s) return null;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(parseFloat(s) * 1000);
  const m = /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?(Z|[+-]\d\d:?\d\d)?$/.exec(s);
  if (m) {
    if (m[8]) {
      const t = Date.parse(s.replace(' ', 'T'));
      return isNaN(t) ? null : t;
    }
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), +((m[7] || '0') + '00').slice(0, 3));
  }
  const t = Date.parse(s);
  return isNaN(t) ? null : t;
}

const UNITS = [['y', 31536e6], ['w', 6048e5], ['d', 864e5], ['h', 36e5], ['m', 6e4], ['s', 1e3], ['ms', 1]];

/** Parses a Prometheus duration (`1h30m`, `15s`, `500ms`) to ms; null when invalid. */
export function parseDuration(s) {
  if (!s) return null;
  s = String(s).trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(parseFloat(s) * 1000);
  const re = /(\d+)(ms|y|w|d|h|m|s)/g;
  let total = 0, used = 0, m;
  while ((m = re.exec(s))) {
    total += +m[1] * UNITS.find((u) => u[0] === m[2])[1];
    used += m[0].length;
  }
  return used === s.length && used > 0 ? total : null;
}

/** Formats ms as a Prometheus duration (`1h30m`). */
export function fmtDuration(ms) {
  if (!ms) return '0s';
  let out = '';
  for (const [u, n] of UNITS) {
    if (ms >= n) {
      out += Math.floor(ms / n) + u;
      ms %= n;
    }
  }
  return out;
}

/** Seconds (float) as a short human duration: `12.3ms`, `1.204s`. */
export function fmtSeconds(s) {
  if (s === undefined || s === null || isNaN(s)) return '';
  if (s < 1e-3) return (s * 1e6).toFixed(0) + 'µs';
  if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + 'ms';
  if (s < 60) return s.toFixed(3) + 's';
  return fmtDuration(Math.round(s * 1000));
}

/** "12s ago" for an RFC 3339 time; "never" for Go's zero time. */
export function ago(rfc) {
  const t = Date.parse(rfc);
  if (!rfc || isNaN(t) || t < 0 || rfc.startsWith('0001-')) return 'never';
  const s = (Date.now() - t) / 1000;
  if (s < 0) return 'just now';
  if (s < 60) return s.toFixed(1) + 's ago';
  return fmtDuration(Math.round(s) * 1000) + ' ago';
}

/** `{a="b", c="d"}` text for a label set (without __name__ first). */
export function labelsText(metric) {
  const name = metric.__name__ || '';
  const inner = Object.entries(metric)
    .filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
  return name + (inner || !name ? `{${inner}}` : '');
}

/** A series label set as coloured inline text. */
export function seriesNode(metric) {
  const e = h('span', { class: 'series' });
  if (metric.__name__) e.append(h('span', { class: 'name' }, metric.__name__));
  const ls = Object.entries(metric).filter(([k]) => k !== '__name__');
  if (ls.length || !metric.__name__) {
    e.append('{');
    ls.forEach(([k, v], i) => {
      if (i) e.append(', ');
      e.append(h('span', { class: 'ln' }, k), '=', h('span', { class: 'lv' }, JSON.stringify(v)));
    });
    e.append('}');
  }
  return e;
}

/** Label badges. */
export function badges(labels) {
  return h('span', {}, Object.entries(labels || {}).map(([k, v]) => h('span', { class: 'badge' }, `${k}="${v}"`)));
}

/** A state pill (up, down, firing, …). */
export function statePill(s) {
  const v = String(s || 'unknown').toLowerCase();
  return h('span', { class: 'state ' + v }, v);
}

/** A collapsible box with a header row; returns {box, body}. */
export function collapsible(headKids, collapsed) {
  const body = h('div', { class: 'body' });
  const box = h('section', { class: 'box' + (collapsed ? ' collapsed' : '') });
  const head = h('div', { class: 'head', role: 'button', tabindex: '0', 'aria-expanded': String(!collapsed) },
    h('span', { class: 'caret' }, '▸'), headKids);
  const toggle = () => {
    box.classList.toggle('collapsed');
    head.setAttribute('aria-expanded', String(!box.classList.contains('collapsed')));
  };
  head.addEventListener('click', (e) => { if (!e.target.closest('button, a, input')) toggle(); });
  head.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
  box.append(head, body);
  return { box, body };
}

/** A table from header names and rows of cells (nodes or text). */
export function table(headers, rows, cls) {
  const ths = headers.map((x) => (x instanceof Node && x.tagName === 'TH' ? x : h('th', {}, x)));
  const body = h('tbody', {}, rows.map((r) => (r instanceof Node ? r : h('tr', {}, r.map((c) => (c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c)))))));
  // Column names on the cells, shown instead of the header row on narrow screens.
  for (const tr of body.children) {
    [...tr.children].forEach((td, i) => { if (ths[i]) td.dataset.label = ths[i].textContent; });
  }
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'cards ' + (cls || '') }, h('thead', {}, h('tr', {}, ths)), body));
}

/** A two-column key/value table. */
export function kvTable(pairs) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'kv' },
    h('tbody', {}, pairs.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v))))));
}

/** Formats a sample value as Prometheus does in tables (shortest round-trip text). */
export function fmtValue(v) {
  if (v === '+Inf' || v === '-Inf' || v === 'NaN') return v;
  const n = Number(v);
  return isNaN(n) ? String(v) : String(n);
}

/** Short axis labels: 1.5k, 2M, 10m (milli). */
export function fmtAxis(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  const units = [[1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  for (const [n, u] of units) if (a >= n) return +(v / n).toPrecision(4) + u;
  if (a >= 1) return String(+v.toPrecision(4));
  const small = [[1e-3, 'm'], [1e-6, 'µ'], [1e-9, 'n']];
  for (const [n, u] of small) if (a >= n) return +(v / n).toPrecision(4) + u;
  return v.toExponential(2);
}
