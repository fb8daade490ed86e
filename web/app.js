// Shell: client-side routing between the pages; every link is relative to <base href>, which
// the server sets to the route prefix.
import { h } from './util.js';
import { queryPage } from './query.js';
import * as pages from './pages.js';

const routes = {
  query: queryPage,
  graph: queryPage,
  targets: pages.targets,
  'service-discovery': pages.serviceDiscovery,
  rules: pages.rules,
  alerts: pages.alerts,
  push: pages.push,
  status: pages.status,
  flags: pages.flags,
  config: pages.config,
  'tsdb-status': pages.tsdbStatus,
};

const titles = {
  query: 'Query', graph: 'Query', targets: 'Targets', 'service-discovery': 'Service discovery',
  rules: 'Rules', alerts: 'Alerts', push: 'Push groups', status: 'Status', flags: 'Command-line flags',
  config: 'Configuration', 'tsdb-status': 'TSDB status',
};

const basePath = new URL(document.baseURI).pathname;

function pageOf(pathname) {
  if (!pathname.startsWith(basePath)) return null;
  return pathname.slice(basePath.length).replace(/\/$/, '') || 'query';
}

let cleanup = null;

async function render() {
  const page = pageOf(location.pathname);
  const app = document.getElementById('app');
  if (cleanup) {
    try { cleanup(); } catch (e) { console.warn(e); }
    cleanup = null;
  }
  app.replaceChildren();
  delete app.dataset.loaded;
  document.body.dataset.page = page || '';
  for (const a of document.querySelectorAll('#nav a')) {
    const p = pageOf(new URL(a.href).pathname);
    a.classList.toggle('current', p === page || (page === 'graph' && p === 'query'));
  }
  document.getElementById('nav').classList.remove('open');
  const fn = routes[page];
  document.title = (titles[page] || 'Not found') + ' – Argus';
  if (!fn) {
    app.append(h('div', { class: 'alert error' }, 'No such page. ', h('a', { href: 'query' }, 'Go to the query page.')));
    app.dataset.loaded = '1';
    return;
  }
  cleanup = (await fn(app)) || null;
}

/** Navigates inside the app without a reload. */
export function navigate(href) {
  history.pushState(null, '', href);
  render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download') || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  const u = new URL(a.href);
  if (u.origin !== location.origin || !routes[pageOf(u.pathname)]) return;
  e.preventDefault();
  navigate(u.href);
});
window.addEventListener('popstate', render);
document.querySelector('.menu-toggle').addEventListener('click', (e) => {
  const nav = document.getElementById('nav');
  nav.classList.toggle('open');
  e.currentTarget.setAttribute('aria-expanded', String(nav.classList.contains('open')));
});

render();
