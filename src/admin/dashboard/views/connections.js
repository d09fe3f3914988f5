// Connections: every client connected over the Ferry protocol, its subscriptions and traffic.
import { api, enc, fmtBytes, fmtDuration, fmtInt, flushPanel, h, table } from '../lib.js';

export async function mount(root, _params, app) {
  app.setTitle('Connections');
  const box = h('div');
  root.append(flushPanel('Client connections', box));

  async function refresh() {
    const connections = await api.get('/api/connections');
    const now = Date.now();
    box.replaceChildren(
      table(
        [
          { title: 'Id', num: true, render: (c) => c.id },
          { title: 'Client', render: (c) => c.clientName || h('span', { class: 'muted' }, '(unnamed)') },
          { title: 'Address', render: (c) => h('span', { class: 'mono' }, `${c.remoteAddress}:${c.remotePort}`) },
          { title: 'Connected', render: (c) => fmtDuration(now - c.connectedAtMs) },
          { title: 'State', render: (c) => (c.slowConsumer ? h('span', { class: 'pill bad', title: `backed up for ${fmtDuration(c.backedUpMs)}` }, 'slow consumer') : h('span', { class: `pill ${c.state === 'open' ? 'good' : ''}` }, c.state)) },
          { title: 'Subscriptions', class: 'wrap', render: (c) => (c.subscriptions.length === 0 ? h('span', { class: 'muted' }, 'none') : c.subscriptions.map((s) => h('a', { class: 'chip', href: s.group ? `#/groups/${enc(s.topic)}/${enc(s.group)}` : `#/topics/${enc(s.topic)}`, title: `${fmtInt(s.delivered)} delivered` }, s.group ? `${s.topic}/${s.group}` : `${s.topic} (stream)`))) },
          { title: 'In-flight requests', num: true, render: (c) => fmtInt(c.inFlightRequests) },
          { title: 'Bytes in', num: true, render: (c) => fmtBytes(c.bytesIn) },
          { title: 'Bytes out', num: true, render: (c) => fmtBytes(c.bytesOut) },
        ],
        connections,
        { testid: 'connections-table', rowTestid: 'connection-row', key: (c) => String(c.id), empty: 'No clients connected.' },
      ),
    );
  }
  await refresh();
  return { refresh };
}
