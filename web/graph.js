// Time-series graph on a <canvas>: lines or stacked areas, axes, hover tooltip (nearest series),
// a legend that toggles series, and zoom by dragging (reported through onZoom).
// The graph element exposes data-series-count (lines drawn) and data-draw-ms (last full draw).
import { h, fmtTime, fmtAxis, labelsText } from './util.js';

const PALETTE = ['#1f77b4', '#e6522c', '#2ca02c', '#9467bd', '#d62728', '#17becf', '#bcbd22',
  '#8c564b', '#e377c2', '#7f7f7f', '#3366cc', '#ff9900', '#109618', '#990099', '#0099c6', '#dd4477'];

export function color(i) {
  if (i < PALETTE.length) return PALETTE[i];
  return `hsl(${(i * 137.508) % 360}, 62%, 50%)`;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
  43200, 86400, 172800, 604800, 2592000, 31536000].map((s) => s * 1000);

function niceTicks(min, max, n) {
  if (!(max > min)) {
    const d = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= d;
    max += d;
  }
  const raw = (max - min) / n;
  let step = 10 ** Math.floor(Math.log10(raw));
  const err = raw / step;
  if (err >= 7.5) step *= 10;
  else if (err >= 3.5) step *= 5;
  else if (err >= 1.5) step *= 2;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { lo, hi, ticks };
}

const pad2 = (n) => String(n).padStart(2, '0');
function timeLabel(ms, span, tstep) {
  const d = new Date(ms);
  const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  if (span > 2 * 86400e3) return `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${hm}`;
  if (tstep < 60e3) return `${hm}:${pad2(d.getUTCSeconds())}`;
  return hm;
}

function cssVar(el, name) {
  return getComputedStyle(el).getPropertyValue(name).trim() || '#888';
}

/**
 * Graph over a query_range result. `opts`: {start, end, step (all ms), stacked, onZoom(startMs, endMs)}.
 * Returns {el, setStacked(bool), destroy()}.
 */
export function createGraph(result, opts) {
  const t0 = performance.now();
  const { start, end, step } = opts;
  const n = Math.max(1, Math.round((end - start) / step) + 1);
  // One Float64Array per series on the query's step grid; NaN where the series has no point.
  const series = result.map((s, i) => {
    const ys = new Float64Array(n).fill(NaN);
    const vals = s.values || [];
    for (let j = 0; j < vals.length; j++) {
      const p = vals[j];
      const k = Math.round((p[0] * 1000 - start) / step);
      if (k >= 0 && k < n) ys[k] = +p[1]; // "NaN" and ±Inf become gaps
    }
    return { metric: s.metric, ys, color: color(i), hidden: false, label: labelsText(s.metric) };
  });
  let stacked = !!opts.stacked;
  const parseMs = performance.now() - t0;

  const main = h('canvas');
  const over = h('canvas');
  const tip = h('div', { class: 'graph-tip' });
  const wrap = h('div', { class: 'graph-wrap' }, main, over, tip);
  const legend = h('div', { class: 'legend' });
  const el = h('div', { class: 'graph' }, wrap, legend);
  let geo = null; // layout of the last draw
  let drawn = null; // per visible series: the y arrays as drawn (cumulative when stacked)

  function layout() {
    const w = Math.max(200, wrap.clientWidth);
    const ht = Math.max(150, wrap.clientHeight);
    const dpr = window.devicePixelRatio || 1;
    for (const c of [main, over]) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(ht * dpr);
      c.style.width = w + 'px';
      c.style.height = ht + 'px';
      c.getContext('2d').setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    return { w, ht };
  }

  function draw() {
    const d0 = performance.now();
    const { w, ht } = layout();
    const ctx = main.getContext('2d');
    const vis = series.filter((s) => !s.hidden);
    drawn = [];
    let min = Infinity, max = -Infinity;
    if (stacked) {
      const acc = new Float64Array(n);
      for (const s of vis) {
        const ys = new Float64Array(n);
        for (let k = 0; k < n; k++) {
          const v = s.ys[k];
          ys[k] = isNaN(v) ? NaN : (acc[k] += v);
        }
        drawn.push({ s, ys, base: null });
      }
      // Each band's lower edge is the previous series' top edge (0 for the first).
      for (let i = 0; i < drawn.length; i++) drawn[i].base = i ? drawn[i - 1].ys : null;
      min = 0;
    }
    else for (const s of vis) drawn.push({ s, ys: s.ys, base: null });
    for (const { ys } of drawn) {
      for (let k = 0; k < n; k++) {
        const v = ys[k];
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    if (min === Infinity) { min = 0; max = 1; }
    const fg = cssVar(el, '--axis');
    const grid = cssVar(el, '--grid');
    ctx.font = '11px system-ui, sans-serif';
    const yt = niceTicks(min, max, Math.max(2, Math.floor(ht / 50)));
    const labelW = Math.max(...yt.ticks.map((v) => ctx.measureText(fmtAxis(v)).width)) + 10;
    const L = Math.ceil(labelW) + 4, R = 10, T = 8, B = 24;
    const pw = w - L - R, ph = ht - T - B;
    const X = (k) => L + (k / Math.max(1, n - 1)) * pw;
    const Y = (v) => T + ph - ((v - yt.lo) / (yt.hi - yt.lo)) * ph;
    geo = { L, T, pw, ph, X, Y, lo: yt.lo, hi: yt.hi, w, ht };
    ctx.clearRect(0, 0, w, ht);
    // Grid and axes.
    ctx.strokeStyle = grid;
    ctx.fillStyle = fg;
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    ctx.beginPath();
    for (const v of yt.ticks) {
      const y = Math.round(Y(v)) + 0.5;
      ctx.moveTo(L, y);
      ctx.lineTo(L + pw, y);
      ctx.fillText(fmtAxis(v), L - 6, y);
    }
    const span = end - start;
    const tstep = TIME_STEPS.find((s) => span / s <= Math.max(2, pw / 90)) || TIME_STEPS[TIME_STEPS.length - 1];
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let t = Math.ceil(start / tstep) * tstep; t <= end; t += tstep) {
      const x = Math.round(L + ((t - start) / Math.max(1, span)) * pw) + 0.5;
      ctx.moveTo(x, T);
      ctx.lineTo(x, T + ph);
      ctx.fillText(timeLabel(t, span, tstep), x, T + ph + 6);
    }
    ctx.stroke();
    // Series: a run of consecutive points is one sub-path; a missing step breaks the line.
    ctx.lineWidth = stacked ? 1 : 1.5;
    ctx.lineJoin = 'round';
    for (const { s, ys, base } of drawn) {
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      let pen = false;
      for (let k = 0; k < n; k++) {
        const v = ys[k];
        if (v !== v) { pen = false; continue; } // NaN
        const x = X(k), y = Y(v);
        if (pen) ctx.lineTo(x, y);
        else { ctx.moveTo(x, y); pen = true; }
      }
      ctx.stroke();
      if (stacked) {
        ctx.fillStyle = s.color;
        ctx.globalAlpha = 0.35;
        let k = 0;
        while (k < n) {
          while (k < n && ys[k] !== ys[k]) k++;
          if (k >= n) break;
          const a = k;
          while (k < n && ys[k] === ys[k]) k++;
          ctx.beginPath();
          ctx.moveTo(X(a), Y(ys[a]));
          for (let j = a + 1; j < k; j++) ctx.lineTo(X(j), Y(ys[j]));
          for (let j = k - 1; j >= a; j--) {
            const b = base ? base[j] : 0;
            ctx.lineTo(X(j), Y(b === b ? b : 0));
          }
          ctx.closePath();
          ctx.fill();
        }
        ctx.globalAlpha = 1;
      }
    }
    el.dataset.seriesCount = String(drawn.length);
    el.dataset.drawMs = (performance.now() - d0).toFixed(2);
  }

  function renderLegend() {
    legend.replaceChildren(...series.map((s) => {
      const item = h('div', { class: s.hidden ? 'off' : '', title: 'Click to show or hide this series', role: 'button', tabindex: '0' },
        h('span', { class: 'sw', style: `background:${s.color}` }), s.label);
      const toggle = () => { s.hidden = !s.hidden; renderLegend(); draw(); };
      item.addEventListener('click', toggle);
      item.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
      return item;
    }));
  }

  // Hover and drag-zoom, drawn on the overlay canvas so the lines are not redrawn.
  let dragFrom = null;
  const octx = () => over.getContext('2d');
  const idxAt = (x) => Math.round(((x - geo.L) / geo.pw) * (n - 1));
  function onMove(e) {
    if (!geo) return;
    const r = over.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    const c = octx();
    c.clearRect(0, 0, geo.w, geo.ht);
    if (dragFrom !== null) {
      c.fillStyle = 'rgba(100,150,255,0.18)';
      c.fillRect(Math.min(dragFrom, x), geo.T, Math.abs(x - dragFrom), geo.ph);
      tip.style.display = 'none';
      return;
    }
    const k = idxAt(x);
    if (k < 0 || k >= n || x > geo.L + geo.pw + 2) { tip.style.display = 'none'; return; }
    let best = null, bestD = Infinity;
    for (const d of drawn) {
      const v = d.ys[k];
      if (v !== v) continue;
      const dy = Math.abs(geo.Y(v) - y);
      if (dy < bestD) { bestD = dy; best = d; }
    }
    if (!best) { tip.style.display = 'none'; return; }
    const px = geo.X(k), py = geo.Y(best.ys[k]);
    c.strokeStyle = cssVar(el, '--axis');
    c.beginPath();
    c.moveTo(Math.round(px) + 0.5, geo.T);
    c.lineTo(Math.round(px) + 0.5, geo.T + geo.ph);
    c.stroke();
    c.fillStyle = best.s.color;
    c.beginPath();
    c.arc(px, py, 4, 0, Math.PI * 2);
    c.fill();
    const raw = best.s.ys[k];
    tip.replaceChildren(
      h('div', { class: 't' }, fmtTime(start + k * step) + ' UTC'),
      h('div', {}, h('span', { class: 'sw', style: `display:inline-block;width:8px;height:8px;margin-right:4px;background:${best.s.color}` }), h('strong', {}, best.s.label)),
      h('div', {}, 'value: ', h('strong', {}, String(raw)), stacked ? h('span', { class: 't' }, ` (stacked: ${fmtAxis(best.ys[k])})`) : null));
    tip.style.display = 'block';
    const tw = tip.offsetWidth;
    tip.style.left = (px + 12 + tw > geo.w ? Math.max(0, px - 12 - tw) : px + 12) + 'px';
    tip.style.top = Math.max(0, Math.min(py + 12, geo.ht - tip.offsetHeight)) + 'px';
  }
  over.addEventListener('mousemove', onMove);
  over.addEventListener('mouseleave', () => {
    if (geo) octx().clearRect(0, 0, geo.w, geo.ht);
    tip.style.display = 'none';
  });
  over.addEventListener('mousedown', (e) => {
    if (e.button !== 0 || !geo) return;
    dragFrom = e.clientX - over.getBoundingClientRect().left;
  });
  const onUp = (e) => {
    if (dragFrom === null) return;
    const x = e.clientX - over.getBoundingClientRect().left;
    const a = Math.min(dragFrom, x), b = Math.max(dragFrom, x);
    dragFrom = null;
    octx().clearRect(0, 0, geo.w, geo.ht);
    if (b - a < 5 || !opts.onZoom) return;
    const tAt = (px) => start + Math.max(0, Math.min(1, (px - geo.L) / geo.pw)) * (end - start);
    opts.onZoom(tAt(a), tAt(b));
  };
  window.addEventListener('mouseup', onUp);
  const ro = new ResizeObserver(() => { if (wrap.clientWidth) draw(); });

  renderLegend();
  requestAnimationFrame(() => ro.observe(wrap));
  return {
    el,
    /** First draw (after `el` is in the document); data-build-ms = parse + draw time. */
    draw() {
      draw();
      el.dataset.parseMs = parseMs.toFixed(2);
      el.dataset.buildMs = (performance.now() - t0).toFixed(2);
    },
    setStacked(v) { stacked = v; draw(); },
    destroy() { ro.disconnect(); window.removeEventListener('mouseup', onUp); },
  };
}
