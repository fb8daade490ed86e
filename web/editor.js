// PromQL expression editor: a transparent <textarea> over a highlighted <pre>, with
// autocompletion of functions, metric names, label names and label values from the API.
// Enter runs the query, Shift+Enter inserts a new line; with the completion list open,
// Arrow keys move, Tab (or Enter after moving) accepts and Escape closes it.
import { h, api } from './util.js';

export const FUNCTIONS = [
  'abs', 'absent', 'absent_over_time', 'acos', 'acosh', 'asin', 'asinh', 'atan', 'atanh',
  'avg_over_time', 'ceil', 'changes', 'clamp', 'clamp_max', 'clamp_min', 'cos', 'cosh',
  'count_over_time', 'day_of_month', 'day_of_week', 'day_of_year', 'days_in_month', 'deg', 'delta',
  'deriv', 'double_exponential_smoothing', 'exp', 'floor', 'histogram_avg', 'histogram_count',
  'histogram_fraction', 'histogram_quantile', 'histogram_stddev', 'histogram_stdvar', 'histogram_sum',
  'holt_winters', 'hour', 'idelta', 'increase', 'irate', 'label_join', 'label_replace',
  'last_over_time', 'ln', 'log10', 'log2', 'mad_over_time', 'max_over_time', 'min_over_time',
  'minute', 'month', 'pi', 'predict_linear', 'present_over_time', 'quantile_over_time', 'rad', 'rate',
  'resets', 'round', 'scalar', 'sgn', 'sin', 'sinh', 'sort', 'sort_by_label', 'sort_by_label_desc',
  'sort_desc', 'sqrt', 'stddev_over_time', 'stdvar_over_time', 'sum_over_time', 'tan', 'tanh',
  'time', 'timestamp', 'vector', 'year',
];
export const AGGREGATORS = [
  'avg', 'bottomk', 'count', 'count_values', 'group', 'limit_ratio', 'limitk', 'max', 'min',
  'quantile', 'stddev', 'stdvar', 'sum', 'topk',
];
const KEYWORDS = ['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'atan2'];
const FN_SET = new Set([...FUNCTIONS, ...AGGREGATORS]);
const KW_SET = new Set(KEYWORDS);

const TOKEN = new RegExp([
  '(#[^\\n]*)', // 1 comment
  '("(?:[^"\\\\\\n]|\\\\.)*"?|\'(?:[^\'\\\\\\n]|\\\\.)*\'?|`[^`]*`?)', // 2 string
  '(\\d+(?:ms|[smhdwy])(?:\\d+(?:ms|[smhdwy]))*)(?![\\w.])', // 3 duration
  '(0[xX][0-9a-fA-F]+|(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)', // 4 number
  '([a-zA-Z_:][a-zA-Z0-9_:]*)', // 5 identifier
  '(=~|!~|!=|==|<=|>=|[-+*/%^<>=])', // 6 operator
  '([\\s\\S])', // 7 anything else
].join('|'), 'g');

/** Returns the highlighted HTML-free node list of `src`. */
export function highlight(src) {
  const frag = document.createDocumentFragment();
  let depth = 0; // inside {…}
  let m;
  TOKEN.lastIndex = 0;
  while ((m = TOKEN.exec(src))) {
    const t = m[0];
    let cls = null;
    if (m[1]) cls = 'comment';
    else if (m[2]) cls = 'str';
    else if (m[3] || m[4]) cls = 'num';
    else if (m[5]) {
      const rest = src.slice(TOKEN.lastIndex);
      if (depth > 0) cls = 'label';
      else if (KW_SET.has(t.toLowerCase())) cls = 'kw';
      else if (FN_SET.has(t) && /^\s*[(]|^\s+(by|without)\b/.test(rest)) cls = 'fn';
      else if (/^(Inf|NaN)$/i.test(t)) cls = 'num';
      else cls = 'metric';
    } else if (m[6]) cls = depth > 0 ? null : 'op';
    else if (t === '{') depth++;
    else if (t === '}') depth = Math.max(0, depth - 1);
    frag.append(cls ? h('span', { class: 'hl-' + cls }, t) : t);
  }
  return frag;
}

const cache = { metrics: null, labels: new Map(), values: new Map() };

async function cached(map, key, fn) {
  if (!map.has(key)) map.set(key, fn().catch(() => []));
  return map.get(key);
}

const metricNames = () => {
  if (!cache.metrics) {
    cache.metrics = api('api/v1/label/__name__/values').then((r) => r.data || []).catch(() => []);
  }
  return cache.metrics;
};
const labelNames = (metric) => cached(cache.labels, metric || '', () =>
  api('api/v1/labels', metric ? { 'match[]': metric } : {}).then((r) => (r.data || []).filter((n) => n !== '__name__')));
const labelValues = (name) => cached(cache.values, name, () =>
  api(`api/v1/label/${encodeURIComponent(name)}/values`).then((r) => r.data || []));

/** What to complete at the end of `before` (text up to the cursor): {kind, prefix, items()}. */
function context(before) {
  // Strip complete strings so quotes inside them do not confuse the checks below.
  const open = before.lastIndexOf('{');
  const close = before.lastIndexOf('}');
  const inBraces = open > close;
  if (inBraces) {
    const inside = before.slice(open + 1);
    const mv = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/.exec(inside);
    if (mv) return { kind: 'label value', prefix: mv[3], items: () => labelValues(mv[1]), close: '"' };
    if (/"(?:[^"\\]|\\.)*"\s*$/.test(inside) || /(=~|!~|!=|=)\s*$/.test(inside)) return null;
    const mn = /([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/.exec(before.slice(0, open));
    const prefix = /[a-zA-Z0-9_]*$/.exec(inside)[0];
    return { kind: 'label', prefix, items: () => labelNames(mn ? mn[1] : '') };
  }
  const grp = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)$/.exec(before);
  if (grp) {
    const prefix = /[a-zA-Z0-9_]*$/.exec(grp[2])[0];
    return { kind: 'label', prefix, items: () => labelNames('') };
  }
  if (/\[[^\]]*$/.test(before)) return null; // range durations
  if ((before.split('"').length - 1) % 2 === 1) return null; // inside a string
  const prefix = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(before);
  if (!prefix) return null;
  return {
    kind: 'metric',
    prefix: prefix[0],
    items: async () => {
      const names = await metricNames();
      return [
        ...[...FUNCTIONS, ...AGGREGATORS].sort().map((f) => ({ text: f, kind: AGGREGATORS.includes(f) ? 'aggregation' : 'function', fn: true })),
        ...KEYWORDS.map((k) => ({ text: k, kind: 'keyword' })),
        ...names.map((n) => ({ text: n, kind: 'metric' })),
      ];
    },
  };
}

/** Creates an editor. opts: {value, placeholder, onRun(), onChange(value)}. */
export function createEditor(opts) {
  const pre = h('pre', { 'aria-hidden': 'true' });
  const ta = h('textarea', {
    spellcheck: 'false', autocomplete: 'off', autocapitalize: 'off', rows: '1',
    'aria-label': 'Expression (Enter runs, Shift+Enter inserts a new line)', placeholder: opts.placeholder || 'Expression (press Enter to execute)',
    class: 'expr-input',
  });
  const list = h('ul', { class: 'completions', role: 'listbox', hidden: true });
  const el = h('div', { class: 'editor' }, pre, ta, list);
  ta.value = opts.value || '';
  let items = [];
  let sel = -1;
  let ctx = null;
  let seq = 0;

  const paint = () => {
    pre.replaceChildren(highlight(ta.value), '\n');
  };
  const closeList = () => {
    list.hidden = true;
    items = [];
    sel = -1;
  };
  const showList = () => {
    list.replaceChildren(...items.map((it, i) => h('li', {
      class: i === sel ? 'sel' : '', role: 'option',
      onmousedown: (e) => { e.preventDefault(); accept(i); },
    }, h('span', {}, it.text), h('span', { class: 'kind' }, it.kind))));
    list.hidden = items.length === 0;
    const s = list.children[sel];
    if (s) s.scrollIntoView({ block: 'nearest' });
  };
  const accept = (i) => {
    // The list may lag behind fast typing: re-read the word at the cursor and keep only an
    // entry that still matches it.
    const pos = ta.selectionStart;
    const c = context(ta.value.slice(0, pos));
    if (!c || !ctx || c.kind !== ctx.kind) { closeList(); return; }
    const p = c.prefix.toLowerCase();
    let it = items[i < 0 ? 0 : i];
    if (!it || !it.text.toLowerCase().includes(p)) it = items.find((x) => x.text.toLowerCase().startsWith(p));
    if (!it) { closeList(); return; }
    const start = pos - c.prefix.length;
    let ins = it.text;
    if (it.fn && ta.value[pos] !== '(') ins += '(';
    if (c.close && ta.value[pos] !== c.close) ins += c.close;
    ta.setRangeText(ins, start, pos, 'end');
    closeList();
    changed();
  };
  const complete = async () => {
    const pos = ta.selectionStart;
    const c = ta.selectionStart === ta.selectionEnd ? context(ta.value.slice(0, pos)) : null;
    const my = ++seq;
    if (!c || (c.kind === 'metric' && c.prefix.length < 1)) {
      closeList();
      return;
    }
    const raw = await c.items();
    if (my !== seq) return;
    const all = raw.map((x) => (typeof x === 'string' ? { text: x, kind: c.kind } : x));
    const p = c.prefix.toLowerCase();
    const exact = all.filter((x) => x.text === c.prefix);
    const starts = all.filter((x) => x.text.toLowerCase().startsWith(p) && x.text !== c.prefix);
    const contains = p ? all.filter((x) => !x.text.toLowerCase().startsWith(p) && x.text.toLowerCase().includes(p)) : [];
    ctx = c;
    items = [...exact, ...starts, ...contains].slice(0, 200);
    sel = -1;
    showList();
  };
  const changed = () => {
    paint();
    if (opts.onChange) opts.onChange(ta.value);
  };

  ta.addEventListener('input', () => { changed(); complete(); });
  ta.addEventListener('blur', () => setTimeout(closeList, 100));
  ta.addEventListener('keydown', (e) => {
    const open = !list.hidden && items.length > 0;
    if (open && e.key === 'ArrowDown') { e.preventDefault(); sel = (sel + 1) % items.length; showList(); return; }
    if (open && e.key === 'ArrowUp') { e.preventDefault(); sel = (sel - 1 + items.length) % items.length; showList(); return; }
    if (open && e.key === 'Escape') { e.preventDefault(); closeList(); return; }
    if (open && (e.key === 'Tab' || (e.key === 'Enter' && sel >= 0 && !e.shiftKey))) { e.preventDefault(); accept(sel); return; }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      closeList();
      opts.onRun();
    }
  });
  paint();
  return {
    el,
    get value() { return ta.value; },
    set value(v) { ta.value = v; paint(); },
    focus() { ta.focus(); },
  };
}
