// The dashboard shell: a hash router over the views, and a sampler that polls /api/overview every
// second so live rates (computed here from counter deltas) keep their history across views.
import { api, errorText, fmtTime, h } from './lib.js';
import * as overview from './views/overview.js';
import * as topics from './views/topics.js';
import * as topic from './views/topic.js';
import * as groups from './views/groups.js';
import * as group from './views/group.js';
import * as deadLetters from './views/dead-letters.js';
import * as connections from './views/connections.js';
import * as cluster from './views/cluster.js';

const SAMPLE_INTERVAL_MS = 1000;
/** Views other than the overview refresh their tables this often. */
const REFRESH_INTERVAL_MS = 2000;
/** Two minutes of one-second samples. */
const HISTORY_SAMPLES = 150;

const ROUTES = [
  { pattern: /^\/?$/, nav: 'overview', view: overview },
  { pattern: /^\/topics$/, nav: 'topics', view: topics },
  { pattern: /^\/topics\/([^/]+)$/, nav: 'topics', view: topic },
  { pattern: /^\/groups$/, nav: 'groups', view: groups },
  { pattern: /^\/groups\/([^/]+)\/([^/]+)$/, nav: 'groups', view: group },
  { pattern: /^\/dead-letters$/, nav: 'dead-letters', view: deadLetters },
  { pattern: /^\/connections$/, nav: 'connections', view: connections },
  { pattern: /^\/cluster$/, nav: 'cluster', view: cluster },
];

/** Rates from successive overview samples; views read `history` and listen for new samples. */
class Sampler {
  constructor() {
    this.latest = null;
    this.previous = null;
    this.history = { in: [], out: [], netIn: [], netOut: [] };
    this.listeners = new Set();
  }

  async sample() {
    let data;
    try {
      data = await api.get('/api/overview');
    } catch (error) {
      setHealth('bad', 'Unreachable', errorText(error));
      return;
    }
    const previous = this.latest;
    this.latest = data;
    if (previous !== null && data.totals !== null && previous.totals !== null) {
      const seconds = Math.max(0.001, (data.timeMs - previous.timeMs) / 1000);
      const rate = (now, before) => Math.max(0, (now - before) / seconds);
      this.push('in', data.timeMs, rate(data.totals.appended, previous.totals.appended));
      this.push('out', data.timeMs, rate(data.traffic.delivered, previous.traffic.delivered));
      if (data.server !== null && previous.server !== null) {
        this.push('netIn', data.timeMs, rate(data.server.bytesIn, previous.server.bytesIn));
        this.push('netOut', data.timeMs, rate(data.server.bytesOut, previous.server.bytesOut));
      }
    }
    if (data.ready) setHealth('good', 'Healthy', 'recovery finished, serving requests');
    else if (data.notReady?.status === 'recovering' || data.notReady === undefined) setHealth('warn', 'Recovering', data.notReady?.reason ?? 'the broker is recovering its logs');
    else setHealth('bad', capitalize(data.notReady.status), data.notReady.reason ?? '');
    document.getElementById('version').textContent = `v${data.info.version} · ${data.info.node}`;
    document.getElementById('updated').textContent = `updated ${fmtTime(data.timeMs).slice(11, 19)}`;
    for (const listener of this.listeners) listener(data);
  }

  push(series, t, v) {
    const points = this.history[series];
    points.push({ t, v });
    if (points.length > HISTORY_SAMPLES) points.shift();
  }
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function setHealth(tone, text, title) {
  const pill = document.getElementById('health');
  pill.className = `pill ${tone}`;
  pill.textContent = text;
  pill.title = title;
  pill.dataset.testid = 'health';
}

const app = {
  sampler: new Sampler(),
  setTitle(...parts) {
    const title = document.getElementById('title');
    title.replaceChildren(
      ...parts.flatMap((part, index) => (index < parts.length - 1 ? [h('span', { class: 'crumb' }, part, ' / ')] : [part])),
    );
    document.title = `${parts.map((part) => (typeof part === 'string' ? part : part.textContent)).join(' / ')} · Ferry`;
  },
  navigate(path) {
    location.hash = '#' + path;
  },
};

let current = null;

async function route() {
  const path = decodeURI(location.hash.replace(/^#/, '')) || '/';
  const match = ROUTES.map((candidate) => ({ candidate, found: candidate.pattern.exec(path) })).find(({ found }) => found !== null);
  current?.dispose?.();
  current = null;
  for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', match?.candidate.nav === link.dataset.nav);
  const root = document.getElementById('view');
  root.replaceChildren();
  if (match === undefined) {
    app.setTitle('Not found');
    root.append(h('div', { class: 'panel empty' }, `No page at ${path}. `, h('a', { href: '#/' }, 'Back to the overview')));
    return;
  }
  const params = match.found.slice(1).map((part) => decodeURIComponent(part));
  const mounted = { disposed: false, dispose() { this.disposed = true; } };
  current = mounted;
  try {
    const view = await match.candidate.view.mount(root, params, app);
    if (mounted.disposed) {
      view?.dispose?.();
      return;
    }
    let timer = null;
    const refresh = async () => {
      if (mounted.disposed) return;
      try {
        await view?.refresh?.();
      } catch (error) {
        console.warn('refresh failed', error);
      }
      if (!mounted.disposed) timer = setTimeout(refresh, REFRESH_INTERVAL_MS);
    };
    if (view?.refresh !== undefined) timer = setTimeout(refresh, REFRESH_INTERVAL_MS);
    mounted.dispose = () => {
      mounted.disposed = true;
      clearTimeout(timer);
      view?.dispose?.();
    };
  } catch (error) {
    root.replaceChildren(h('div', { class: 'error-box', role: 'alert' }, errorText(error)));
  }
}

window.addEventListener('hashchange', route);
async function loop() {
  await app.sampler.sample();
  setTimeout(loop, SAMPLE_INTERVAL_MS);
}
void loop();
void route();
