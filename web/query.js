// The query page: panels with an expression editor, a table at an evaluation time and a graph
// over a range. All state lives in the URL with Prometheus's scheme:
//   g<N>.expr, g<N>.tab (0 = graph, 1 = table as in Prometheus 2; or "graph"/"table" as in 3.x),
//   g<N>.range_input (1h), g<N>.end_input and g<N>.moment_input ("YYYY-MM-DD HH:MM:SS" UTC),
//   g<N>.step_input (seconds; 3.x's g<N>.res_step too), g<N>.stacked=1 (or display_mode=stacked).
import { h, api, errorBox, fmtTime, parseTime, parseDuration, fmtDuration, fmtValue, seriesNode } from './util.js';
import { createEditor } from './editor.js';
import { createGraph } from './graph.js';

const MAX_TABLE_ROWS = 10000;
const MAX_GRAPH_SERIES = 1000;

/** Reads the panels from a query string. */
export function readPanels(search) {
  const p = new URLSearchParams(search);
  const idx = new Set();
  for (const k of p.keys()) {
    const m = /^g(\d+)\./.exec(k);
    if (m && +m[1] < 100) idx.add(+m[1]);
  }
  const panels = [...idx].sort((a, b) => a - b).map((i) => {
    const g = (k) => p.get(`g${i}.${k}`);
    const tab = g('tab');
    const step = g('step_input') || g('res_step');
    return {
      expr: g('expr') || '',
      tab: tab === '0' || tab === 'graph' ? 'graph' : 'table',
      range: parseDuration(g('range_input')) || 3600e3,
      end: parseTime(g('end_input')),
      moment: parseTime(g('moment_input')),
      step: step ? parseDuration(step) : null,
      stacked: g('stacked') === '1' || g('display_mode') === 'stacked',
    };
  });
  return panels.length ? panels : [newPanel()];
}

function newPanel() {
  return { expr: '', tab: 'table', range: 3600e3, end: null, moment: null, step: null, stacked: false };
}

/** Writes the panels as a query string (3.x style tab names). */
export function writePanels(panels) {
  const p = new URLSearchParams();
  panels.forEach((s, i) => {
    p.set(`g${i}.expr`, s.expr);
    p.set(`g${i}.tab`, s.tab);
    p.set(`g${i}.range_input`, fmtDuration(s.range));
    if (s.end !== null) p.set(`g${i}.end_input`, fmtTime(s.end));
    if (s.moment !== null) p.set(`g${i}.moment_input`, fmtTime(s.moment));
    if (s.step) p.set(`g${i}.step_input`, String(s.step / 1000));
    if (s.stacked) p.set(`g${i}.stacked`, '1');
  });
  return p.toString();
}

/** Prometheus's default resolution: range / 250, at least 1 s. */
function autoStep(range) {
  return Math.max(1000, Math.floor(range / 250 / 1000) * 1000);
}

export async function queryPage(root) {
  const panels = readPanels(location.search);
  const syncURL = () => history.replaceState(null, '', 'query?' + writePanels(panels));
  syncURL(); // /graph?… becomes /query?…; Prometheus 2's numeric tabs become names
  const list = h('div', { class: 'panels' });
  const views = [];
  const add = (state) => {
    const v = panelView(state, {
      changed: syncURL,
      remove: () => {
        const i = views.indexOf(v);
        if (panels.length === 1) return;
        panels.splice(i, 1);
        views.splice(i, 1);
        v.destroy();
        v.el.remove();
        syncURL();
      },
    });
    views.push(v);
    list.append(v.el);
    return v;
  };
  panels.forEach(add);
  root.append(h('h1', { class: 'hide-phone' }, 'Query'), list,
    h('button', {
      type: 'button', class: 'add-panel',
      onclick: () => { const s = newPanel(); panels.push(s); add(s).focus(); syncURL(); },
    }, '+ Add panel'));
  root.dataset.loaded = '1';
  views.forEach((v) => { if (v.state.expr) v.run(); });
  if (views[0] && !views[0].state.expr) views[0].focus();
  return () => views.forEach((v) => v.destroy());
}

function panelView(state, hooks) {
  const editor = createEditor({
    value: state.expr,
    onRun: () => run(),
    onChange: (v) => { state.expr = v; hooks.changed(); },
  });
  const execBtn = h('button', { type: 'button', class: 'primary execute', onclick: () => run() }, 'Execute');
  const tabTable = h('button', { type: 'button', class: 'tab-table', onclick: () => setTab('table') }, 'Table');
  const tabGraph = h('button', { type: 'button', class: 'tab-graph', onclick: () => setTab('graph') }, 'Graph');
  const stats = h('span', { class: 'stats' });
  const messages = h('div', { class: 'messages' });
  const body = h('div', { class: 'tab-body' });
  const el = h('div', { class: 'panel' },
    h('div', { class: 'expr-row' }, editor.el, execBtn,
      h('button', { type: 'button', class: 'remove-panel', title: 'Remove this panel', 'aria-label': 'Remove this panel', onclick: () => hooks.remove() }, '×')),
    h('div', { class: 'tabs' }, tabTable, tabGraph, stats),
    body);
  let graph = null;
  let seq = 0;

  // Table controls: evaluation time.
  const momentInput = h('input', { type: 'text', class: 'input-md moment', placeholder: 'Evaluation time (now)', value: state.moment !== null ? fmtTime(state.moment) : '' });
  momentInput.addEventListener('change', () => { state.moment = parseTime(momentInput.value); hooks.changed(); run(); });
  const shiftMoment = (dir) => {
    const base = state.moment ?? Date.now();
    state.moment = base + dir * state.range;
    momentInput.value = fmtTime(state.moment);
    hooks.changed();
    run();
  };
  const tableBar = h('div', { class: 'toolbar' }, 'Evaluation time (UTC):',
    h('span', { class: 'field-group' },
      h('button', { type: 'button', title: 'Back by the range', onclick: () => shiftMoment(-1) }, '‹'),
      momentInput,
      h('button', { type: 'button', title: 'Forward by the range', onclick: () => shiftMoment(1) }, '›')),
    h('button', { type: 'button', onclick: () => { state.moment = null; momentInput.value = ''; hooks.changed(); run(); } }, 'Now'));

  // Graph controls: range, end time, resolution, stacked.
  const rangeInput = h('input', { type: 'text', class: 'input-sm range', value: fmtDuration(state.range), 'aria-label': 'Range' });
  const endInput = h('input', { type: 'text', class: 'input-md end', placeholder: 'End time (now)', value: state.end !== null ? fmtTime(state.end) : '', 'aria-label': 'End time' });
  const stepInput = h('input', { type: 'text', class: 'input-sm step', placeholder: 'Res. (s)', value: state.step ? String(state.step / 1000) : '', 'aria-label': 'Resolution in seconds' });
  const linesBtn = h('button', { type: 'button', class: 'mode-lines', onclick: () => setStacked(false) }, 'Lines');
  const stackBtn = h('button', { type: 'button', class: 'mode-stacked', onclick: () => setStacked(true) }, 'Stacked');
  const RANGES = [60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3, 14 * 86400e3, 28 * 86400e3, 56 * 86400e3, 365 * 86400e3];
  const zoomRange = (dir) => {
    const i = RANGES.findIndex((r) => r >= state.range);
    const j = dir > 0 ? (i < 0 ? RANGES.length - 1 : Math.min(RANGES.length - 1, RANGES[i] > state.range ? i : i + 1)) : Math.max(0, (i < 0 ? RANGES.length : i) - 1);
    state.range = RANGES[j];
    rangeInput.value = fmtDuration(state.range);
    hooks.changed();
    run();
  };
  rangeInput.addEventListener('change', () => {
    const r = parseDuration(rangeInput.value);
    if (r) state.range = r;
    rangeInput.value = fmtDuration(state.range);
    hooks.changed();
    run();
  });
  endInput.addEventListener('change', () => { state.end = parseTime(endInput.value); endInput.value = state.end !== null ? fmtTime(state.end) : ''; hooks.changed(); run(); });
  stepInput.addEventListener('change', () => { const s = parseFloat(stepInput.value); state.step = s > 0 ? Math.round(s * 1000) : null; hooks.changed(); run(); });
  const shiftEnd = (dir) => {
    state.end = (state.end ?? Date.now()) + (dir * state.range) / 2;
    endInput.value = fmtTime(state.end);
    hooks.changed();
    run();
  };
  const graphBar = h('div', { class: 'toolbar' },
    h('span', { class: 'field-group' },
      h('button', { type: 'button', title: 'Shorter range', onclick: () => zoomRange(-1) }, '−'),
      rangeInput,
      h('button', { type: 'button', title: 'Longer range', onclick: () => zoomRange(1) }, '+')),
    h('span', { class: 'field-group' },
      h('button', { type: 'button', title: 'Earlier', onclick: () => shiftEnd(-1) }, '‹'),
      endInput,
      h('button', { type: 'button', title: 'Later', onclick: () => shiftEnd(1) }, '›')),
    h('button', { type: 'button', title: 'End now', onclick: () => { state.end = null; endInput.value = ''; hooks.changed(); run(); } }, 'Now'),
    stepInput,
    h('span', { class: 'field-group' }, linesBtn, stackBtn),
    h('span', { class: 'muted hide-phone' }, 'Drag on the graph to zoom.'));

  function setStacked(v) {
    state.stacked = v;
    linesBtn.classList.toggle('active', !v);
    stackBtn.classList.toggle('active', v);
    hooks.changed();
    if (graph) graph.setStacked(v);
  }

  function setTab(t) {
    state.tab = t;
    hooks.changed();
    run();
  }

  function showTabs() {
    tabTable.classList.toggle('active', state.tab === 'table');
    tabGraph.classList.toggle('active', state.tab === 'graph');
    linesBtn.classList.toggle('active', !state.stacked);
    stackBtn.classList.toggle('active', state.stacked);
  }

  function dropGraph() {
    if (graph) graph.destroy();
    graph = null;
  }

  function showMessages(resp) {
    for (const w of resp.warnings || []) messages.append(h('div', { class: 'alert warning' }, h('strong', {}, 'Warning'), ': ', w));
    for (const w of resp.infos || []) messages.append(h('div', { class: 'alert info' }, h('strong', {}, 'Info'), ': ', w));
  }

  async function run() {
    const my = ++seq;
    state.expr = editor.value;
    hooks.changed();
    showTabs();
    messages.replaceChildren();
    dropGraph();
    body.replaceChildren(state.tab === 'table' ? tableBar : graphBar, messages);
    delete el.dataset.done;
    if (!state.expr.trim()) {
      stats.textContent = '';
      body.append(h('p', { class: 'muted' }, 'No data queried yet.'));
      el.dataset.done = '1';
      return;
    }
    const out = h('div', { class: 'result' }, h('p', { class: 'muted' }, 'Loading…'));
    body.append(out);
    const t0 = performance.now();
    try {
      if (state.tab === 'table') {
        const time = state.moment ?? Date.now();
        const resp = await api('api/v1/query', { query: state.expr, time: (time / 1000).toFixed(3) });
        if (my !== seq) return;
        const ms = performance.now() - t0;
        showMessages(resp);
        const { table, series, samples } = renderTable(resp.data);
        out.replaceChildren(table);
        stats.textContent = `Load time: ${ms.toFixed(0)}ms · Result series: ${series} · Samples: ${samples}`;
      } else {
        const end = state.end ?? Date.now();
        const start = end - state.range;
        let step = state.step || autoStep(state.range);
        if (state.range / step > 11000) step = Math.ceil(state.range / 11000 / 1000) * 1000;
        const resp = await api('api/v1/query_range', {
          query: state.expr, start: (start / 1000).toFixed(3), end: (end / 1000).toFixed(3), step: step / 1000,
        });
        if (my !== seq) return;
        const ms = performance.now() - t0;
        showMessages(resp);
        let result = resp.data.resultType === 'matrix' ? resp.data.result : [];
        if (resp.data.resultType !== 'matrix') {
          messages.append(h('div', { class: 'alert error' }, h('strong', {}, 'Error'), `: the graph needs a range vector result, got ${resp.data.resultType}`));
        }
        const samples = result.reduce((a, s) => a + (s.values || []).length + (s.histograms || []).length, 0);
        if (result.length > MAX_GRAPH_SERIES) {
          messages.append(h('div', { class: 'alert warning' }, `Showing the first ${MAX_GRAPH_SERIES} of ${result.length} series.`));
          result = result.slice(0, MAX_GRAPH_SERIES);
        }
        stats.textContent = `Load time: ${ms.toFixed(0)}ms · Resolution: ${step / 1000}s · Result series: ${resp.data.result.length} · Samples: ${samples}`;
        if (!result.length) {
          out.replaceChildren(h('p', { class: 'muted' }, 'Empty query result'));
        } else {
          graph = createGraph(result, {
            start, end, step, stacked: state.stacked,
            onZoom: (a, b) => {
              state.end = Math.round(b);
              state.range = Math.max(1000, Math.round((b - a) / 1000) * 1000);
              rangeInput.value = fmtDuration(state.range);
              endInput.value = fmtTime(state.end);
              hooks.changed();
              run();
            },
          });
          out.replaceChildren(graph.el);
          graph.draw();
        }
      }
    } catch (e) {
      if (my !== seq) return;
      stats.textContent = '';
      out.replaceChildren();
      messages.append(errorBox(e, 'Error executing query'));
    }
    el.dataset.done = '1';
  }

  return {
    el,
    state,
    run,
    focus: () => editor.focus(),
    destroy: dropGraph,
    remove: hooks.remove,
  };
}

function renderTable(data) {
  const rows = [];
  let series = 0, samples = 0;
  const tr = (metric, value) => h('tr', {}, h('td', { class: 'series' }, metric), h('td', { class: 'value' }, value));
  switch (data.resultType) {
    case 'vector':
      series = data.result.length;
      samples = series;
      for (const s of data.result.slice(0, MAX_TABLE_ROWS)) {
        rows.push(tr(seriesNode(s.metric), s.value ? fmtValue(s.value[1]) : histText(s.histogram)));
      }
      break;
    case 'matrix':
      series = data.result.length;
      for (const s of data.result.slice(0, MAX_TABLE_ROWS)) {
        const vals = (s.values || []).map(([t, v]) => `${fmtValue(v)} @${t}`);
        samples += vals.length + (s.histograms || []).length;
        rows.push(tr(seriesNode(s.metric), h('div', {}, vals.map((v) => h('div', {}, v)))));
      }
      break;
    case 'scalar':
      rows.push(tr('scalar', fmtValue(data.result[1])));
      samples = 1;
      break;
    case 'string':
      rows.push(tr('string', data.result[1]));
      samples = 1;
      break;
    default:
      rows.push(tr('unknown result type', data.resultType));
  }
  const t = h('div', { class: 'table-wrap' }, h('table', { class: 'result-table', 'data-rows': String(rows.length) },
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: '2', class: 'muted' }, 'Empty query result')))));
  if (series > MAX_TABLE_ROWS) {
    t.prepend(h('div', { class: 'alert warning' }, `Showing the first ${MAX_TABLE_ROWS} of ${series} series.`));
  }
  return { table: t, series, samples };
}

function histText(hist) {
  if (!hist) return '';
  const v = hist[1] || {};
  return `histogram: count=${v.count} sum=${v.sum}`;
}
