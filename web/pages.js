// Targets, service discovery, rules, alerts, push groups and the status pages.
import {
  h, api, load, ago, fmtSeconds, badges, statePill, collapsible, table, kvTable, fmtTime,
} from './util.js';

function byPool(targets) {
  const pools = new Map();
  for (const t of targets) {
    if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
    pools.get(t.scrapePool).push(t);
  }
  return [...pools.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

const matchesText = (t, q) => !q || JSON.stringify([t.scrapeUrl, t.labels, t.discoveredLabels, t.lastError]).toLowerCase().includes(q);

export async function targets(root) {
  root.append(h('h1', {}, 'Targets'));
  const stateSel = h('select', { class: 'state-filter', 'aria-label': 'Filter by state' },
    h('option', { value: '' }, 'All states'), h('option', { value: 'up' }, 'Up'),
    h('option', { value: 'down' }, 'Down'), h('option', { value: 'unknown' }, 'Unknown'));
  const text = h('input', { type: 'search', class: 'text-filter', placeholder: 'Filter by endpoint or labels', 'aria-label': 'Filter by endpoint or labels' });
  const list = h('div', { class: 'pools' });
  let boxes = [];
  const setAll = (collapsed) => boxes.forEach((b) => b.classList.toggle('collapsed', collapsed));
  root.append(h('div', { class: 'toolbar' }, stateSel, text,
    h('button', { type: 'button', onclick: () => setAll(true) }, 'Collapse all'),
    h('button', { type: 'button', onclick: () => setAll(false) }, 'Expand all')), list);
  let data = [];
  const render = () => {
    const st = stateSel.value;
    const q = text.value.trim().toLowerCase();
    const collapsed = new Set(boxes.filter((b) => b.classList.contains('collapsed')).map((b) => b.dataset.pool));
    boxes = [];
    list.replaceChildren();
    for (const [pool, ts] of byPool(data)) {
      const up = ts.filter((t) => t.health === 'up').length;
      const shown = ts.filter((t) => (!st || t.health === st) && matchesText(t, q));
      if (!shown.length && (st || q)) continue;
      const { box, body } = collapsible([h('strong', {}, pool), h('span', { class: 'muted' }, `(${up}/${ts.length} up)`)], collapsed.has(pool));
      box.dataset.pool = pool;
      box.classList.add('pool');
      body.append(table(['Endpoint', 'State', 'Labels', 'Last scrape', 'Scrape duration', 'Error'],
        shown.map((t) => h('tr', { class: 'target', 'data-health': t.health },
          h('td', {}, h('a', { href: t.scrapeUrl, target: '_blank', rel: 'noopener' }, t.scrapeUrl)),
          h('td', {}, statePill(t.health)),
          h('td', {}, badges(t.labels)),
          h('td', { title: t.lastScrape }, ago(t.lastScrape)),
          h('td', {}, fmtSeconds(t.lastScrapeDuration)),
          h('td', { class: 'err-text last-error' }, t.lastError || '')))));
      boxes.push(box);
      list.append(box);
    }
    if (!list.children.length) list.append(h('p', { class: 'muted' }, data.length ? 'No targets match the filter.' : 'No targets.'));
  };
  stateSel.addEventListener('change', render);
  text.addEventListener('input', render);
  await load(root, async () => {
    data = (await api('api/v1/targets', { state: 'active' })).data.activeTargets || [];
    render();
  });
}

export async function serviceDiscovery(root) {
  root.append(h('h1', {}, 'Service discovery'));
  await load(root, async () => {
    const d = (await api('api/v1/targets')).data;
    const active = d.activeTargets || [];
    const dropped = d.droppedTargets || [];
    const pools = new Map();
    const get = (p) => { if (!pools.has(p)) pools.set(p, { active: [], dropped: [] }); return pools.get(p); };
    active.forEach((t) => get(t.scrapePool).active.push(t));
    dropped.forEach((t) => get(t.scrapePool || t.discoveredLabels?.job || '').dropped.push(t));
    const counts = d.droppedTargetCounts || {};
    const names = [...pools.keys()].sort();
    root.append(h('ul', { class: 'toc' }, names.map((n) =>
      h('li', {}, h('a', { href: '#pool-' + encodeURIComponent(n), onclick: (e) => { e.preventDefault(); document.getElementById('pool-' + n)?.scrollIntoView(); } }, n),
        ` (${pools.get(n).active.length} / ${pools.get(n).active.length + (counts[n] ?? pools.get(n).dropped.length)} active targets)`))));
    for (const n of names) {
      const p = pools.get(n);
      const { box, body } = collapsible([h('strong', {}, n),
        h('span', { class: 'muted' }, `${p.active.length} active, ${counts[n] ?? p.dropped.length} dropped`)], false);
      box.id = 'pool-' + n;
      body.append(table(['Discovered labels', 'Target labels'], [
        ...p.active.map((t) => [badges(t.discoveredLabels), badges(t.labels)]),
        ...p.dropped.map((t) => h('tr', { class: 'dropped' }, h('td', {}, badges(t.discoveredLabels)), h('td', {}, h('span', { class: 'state unknown' }, 'Dropped')))),
      ]));
      root.append(box);
    }
    if (!names.length) root.append(h('p', { class: 'muted' }, 'No targets discovered.'));
  });
}

function ruleHealth(r) {
  return h('span', {}, statePill(r.health), r.lastError ? h('div', { class: 'err-text' }, r.lastError) : null);
}

function ruleDef(r) {
  const lines = [];
  const kv = (k, v) => h('div', {}, h('span', { class: 'muted' }, k + ': '), v);
  if (r.type === 'alerting') {
    lines.push(kv('alert', h('strong', {}, r.name)));
    lines.push(kv('expr', h('code', {}, r.query)));
    if (r.duration) lines.push(kv('for', fmtSeconds(r.duration)));
    if (r.keepFiringFor) lines.push(kv('keep_firing_for', fmtSeconds(r.keepFiringFor)));
    if (r.labels && Object.keys(r.labels).length) lines.push(kv('labels', badges(r.labels)));
    if (r.annotations && Object.keys(r.annotations).length) {
      lines.push(kv('annotations', h('div', { class: 'ann' }, Object.entries(r.annotations).map(([k, v]) => h('div', {}, h('code', {}, k), ': ', v)))));
    }
  } else {
    lines.push(kv('record', h('strong', {}, r.name)));
    lines.push(kv('expr', h('code', {}, r.query)));
    if (r.labels && Object.keys(r.labels).length) lines.push(kv('labels', badges(r.labels)));
  }
  return h('div', { class: 'rule-def' }, lines);
}

export async function rules(root) {
  root.append(h('h1', {}, 'Rules'));
  await load(root, async () => {
    const groups = (await api('api/v1/rules')).data.groups || [];
    if (!groups.length) root.append(h('p', { class: 'muted' }, 'No rule groups configured.'));
    for (const g of groups) {
      const { box, body } = collapsible([h('strong', {}, g.name), h('span', { class: 'muted' }, g.file),
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted' }, `interval ${fmtSeconds(g.interval)} · last evaluation ${ago(g.lastEvaluation)} · took ${fmtSeconds(g.evaluationTime)}`)], false);
      box.classList.add('rule-group');
      body.append(table(['Rule', 'State', 'Health', 'Last evaluation', 'Evaluation time'], (g.rules || []).map((r) =>
        h('tr', { class: 'rule', 'data-name': r.name },
          h('td', {}, ruleDef(r)),
          h('td', {}, r.type === 'alerting' ? statePill(r.state) : ''),
          h('td', {}, ruleHealth(r)),
          h('td', { title: r.lastEvaluation }, ago(r.lastEvaluation)),
          h('td', {}, fmtSeconds(r.evaluationTime))))));
      root.append(box);
    }
  });
}

export async function alerts(root) {
  root.append(h('h1', {}, 'Alerts'));
  const show = { inactive: true, pending: true, firing: true };
  const bar = h('div', { class: 'toolbar' }, 'Show:');
  const list = h('div', {});
  root.append(bar, list);
  await load(root, async () => {
    const groups = (await api('api/v1/rules', { type: 'alert' })).data.groups || [];
    const all = groups.flatMap((g) => (g.rules || []).filter((r) => r.type === 'alerting').map((r) => ({ g, r })));
    const count = (s) => all.filter(({ r }) => r.state === s).length;
    for (const s of ['inactive', 'pending', 'firing']) {
      const cb = h('input', { type: 'checkbox', checked: true, onchange: () => { show[s] = cb.checked; render(); } });
      bar.append(h('label', { class: 'state-toggle' }, cb, ' ', statePill(s), ` (${count(s)})`));
    }
    const render = () => {
      list.replaceChildren();
      for (const { g, r } of all) {
        if (!show[r.state]) continue;
        const n = (r.alerts || []).length;
        const { box, body } = collapsible([statePill(r.state), h('strong', {}, r.name),
          h('span', { class: 'muted' }, `(${n} active)`), h('span', { class: 'spacer' }), h('span', { class: 'muted' }, `${g.file} › ${g.name}`)], r.state === 'inactive');
        box.classList.add('alert-rule');
        box.dataset.state = r.state;
        body.append(ruleDef(r));
        if (n) {
          body.append(table(['Labels', 'State', 'Active since', h('th', { class: 'num' }, 'Value'), 'Annotations'], r.alerts.map((a) =>
            h('tr', { class: 'alert-instance', 'data-state': a.state },
              h('td', {}, badges(a.labels)),
              h('td', {}, statePill(a.state)),
              h('td', { title: a.activeAt }, a.activeAt ? fmtTime(Date.parse(a.activeAt)) + ' UTC' : ''),
              h('td', { class: 'num' }, a.value),
              h('td', {}, Object.entries(a.annotations || {}).map(([k, v]) => h('div', {}, h('code', {}, k), ': ', v)))))));
        }
        list.append(box);
      }
      if (!list.children.length) list.append(h('p', { class: 'muted' }, all.length ? 'No alerting rules in the selected states.' : 'No alerting rules configured.'));
    };
    render();
  });
}

const b64url = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s))).replace(/\+/g, '-').replace(/\//g, '_');

/** `metrics/job@base64/<job>/<label>@base64/<value>…`: the group's push URL path. */
function groupPath(labels) {
  const job = labels.job || '';
  let p = `metrics/job@base64/${b64url(job) || '='}`;
  for (const [k, v] of Object.entries(labels)) {
    if (k !== 'job') p += `/${encodeURIComponent(k)}@base64/${b64url(v) || '='}`;
  }
  return p;
}

function metricValue(m) {
  if (m.value !== undefined) return m.value;
  const parts = [];
  if (m.quantiles) parts.push(...Object.entries(m.quantiles).map(([q, v]) => `q${q}=${v}`));
  if (m.buckets) parts.push(...Object.entries(m.buckets).map(([le, v]) => `le${le}=${v}`));
  parts.push(`count=${m.count}`, `sum=${m.sum}`);
  return parts.join(' ');
}

export async function push(root) {
  root.append(h('h1', {}, 'Push groups'));
  const list = h('div', {});
  root.append(list);
  const refresh = () => load(list, async () => {
    list.replaceChildren();
    const groups = (await api('api/v1/metrics')).data || [];
    if (!groups.length) list.append(h('p', { class: 'muted' }, 'No pushed groups.'));
    for (const g of groups) {
      const labels = g.labels || {};
      const fams = Object.entries(g).filter(([k]) => k !== 'labels' && k !== 'last_push_successful');
      const pushTime = g.push_time_seconds?.metrics?.[0]?.value;
      const when = pushTime ? fmtTime(parseFloat(pushTime) * 1000) + ' UTC' : 'unknown';
      const del = h('span', { class: 'confirm' });
      const delBtn = h('button', { type: 'button', class: 'danger delete-group' }, 'Delete group');
      delBtn.addEventListener('click', () => {
        del.replaceChildren('Delete this group and all its metrics? ',
          h('button', {
            type: 'button', class: 'danger confirm-delete', onclick: async () => {
              try {
                await api(groupPath(labels), null, { method: 'DELETE' });
                refresh();
              } catch (e) {
                del.replaceChildren(h('span', { class: 'err-text' }, 'Delete failed: ' + e.message));
              }
            },
          }, 'Delete'),
          h('button', { type: 'button', onclick: () => del.replaceChildren(delBtn) }, 'Cancel'));
      });
      del.append(delBtn);
      const { box, body } = collapsible([badges(labels), h('span', { class: 'spacer' }),
        g.last_push_successful === false ? h('span', { class: 'state down' }, 'last push failed') : null,
        h('span', { class: 'muted' }, 'last push: ' + when), del], false);
      box.classList.add('push-group');
      for (const [name, f] of fams.sort((a, b) => a[0].localeCompare(b[0]))) {
        body.append(h('div', { class: 'family' }, h('code', { class: 'family-name' }, name), h('span', { class: 'badge' }, (f.type || 'untyped').toLowerCase()),
          f.help ? h('span', { class: 'muted' }, f.help) : null,
          h('span', { class: 'muted' }, `pushed ${f.time_stamp ? fmtTime(Date.parse(f.time_stamp)) + ' UTC' : ''}`)));
        body.append(table(['Labels', h('th', { class: 'num' }, 'Value')], (f.metrics || []).map((m) => [badges(m.labels), h('td', { class: 'num' }, metricValue(m))]), 'fixed'));
      }
      list.append(box);
    }
  });
  await refresh();
  root.dataset.loaded = '1';
}

export async function status(root) {
  root.append(h('h1', {}, 'Runtime and build information'));
  await load(root, async () => {
    const [rt, bi, am] = await Promise.all([api('api/v1/status/runtimeinfo'), api('api/v1/status/buildinfo'), api('api/v1/alertmanagers')]);
    const r = rt.data;
    root.append(h('h2', {}, 'Runtime information'), kvTable([
      ['Start time', r.startTime], ['Working directory', r.CWD],
      ['Configuration reload', r.reloadConfigSuccess ? 'Successful' : 'Unsuccessful'],
      ['Last successful configuration reload', r.lastConfigTime], ['WAL corruptions', String(r.corruptionCount)],
      ['Threads', String(r.GOMAXPROCS)], ['Storage retention', r.storageRetention],
    ]));
    const b = bi.data;
    root.append(h('h2', {}, 'Build information'), kvTable([
      ['Version', b.version], ['Revision', b.revision], ['Branch', b.branch], ['Build user', b.buildUser],
      ['Build date', b.buildDate], ['Language', b.goVersion],
    ]));
    const ams = am.data.activeAlertmanagers || [];
    root.append(h('h2', {}, 'Alertmanagers'), ams.length
      ? table(['Endpoint'], ams.map((a) => [a.url]))
      : h('p', { class: 'muted' }, 'No Alertmanagers configured.'));
  });
}

export async function flags(root) {
  root.append(h('h1', {}, 'Command-line flags'));
  const filter = h('input', { type: 'search', placeholder: 'Filter flags', 'aria-label': 'Filter flags' });
  const out = h('div', {});
  root.append(h('div', { class: 'toolbar' }, filter), out);
  await load(root, async () => {
    const f = (await api('api/v1/status/flags')).data;
    const render = () => {
      const q = filter.value.toLowerCase();
      out.replaceChildren(table(['Flag', 'Value'], Object.entries(f)
        .filter(([k, v]) => !q || k.toLowerCase().includes(q) || String(v).toLowerCase().includes(q))
        .map(([k, v]) => [h('code', {}, '--' + k), h('code', {}, v)]), 'flags'));
    };
    filter.addEventListener('input', render);
    render();
  });
}

export async function config(root) {
  root.append(h('h1', {}, 'Configuration'));
  await load(root, async () => {
    const y = (await api('api/v1/status/config')).data.yaml;
    const pre = h('pre', { class: 'config' }, y);
    root.append(h('div', { class: 'toolbar' }, h('button', {
      type: 'button', onclick: (e) => {
        navigator.clipboard?.writeText(y).then(() => { e.target.textContent = 'Copied'; }, () => {});
      },
    }, 'Copy to clipboard')), pre);
  });
}

export async function tsdbStatus(root) {
  root.append(h('h1', {}, 'TSDB status'));
  await load(root, async () => {
    const d = (await api('api/v1/status/tsdb')).data;
    const hs = d.headStats || {};
    const empty = !hs.numSeries;
    root.append(h('h2', {}, 'Head block'), kvTable([
      ['Number of series', String(hs.numSeries)], ['Number of chunks', String(hs.chunkCount)],
      ['Number of label pairs', String(hs.numLabelPairs)],
      ['Current min time', empty ? '—' : `${fmtTime(hs.minTime)} UTC (${hs.minTime})`],
      ['Current max time', empty ? '—' : `${fmtTime(hs.maxTime)} UTC (${hs.maxTime})`],
    ]));
    const sec = (title, col, rows) => {
      root.append(h('h2', {}, title), rows && rows.length
        ? table(['Name', h('th', { class: 'num' }, col)], rows.map((r) => [h('code', {}, r.name), h('td', { class: 'num' }, String(r.value))]), 'fixed')
        : h('p', { class: 'muted' }, 'None.'));
    };
    sec('Top series count by metric name', 'Count', d.seriesCountByMetricName);
    sec('Top label names with value count', 'Count', d.labelValueCountByLabelName);
    sec('Top label names with high memory usage', 'Bytes', d.memoryInBytesByLabelName);
    sec('Top series count by label value pairs', 'Count', d.seriesCountByLabelValuePair);
  });
}
