// Groups: every queue group with its lag and what is in flight; the worst lag first.
import { api, enc, fmtDuration, fmtInt, flushPanel, h, table } from '../lib.js';

export async function mount(root, _params, app) {
  app.setTitle('Groups');
  const box = h('div');
  root.append(flushPanel('Queue groups', box));

  async function refresh() {
    const groups = await api.get('/api/groups');
    groups.sort((a, b) => b.pending - a.pending || a.topic.localeCompare(b.topic) || a.name.localeCompare(b.name));
    const worst = Math.max(1, ...groups.map((g) => g.pending));
    box.replaceChildren(
      table(
        [
          { title: 'Topic', render: (g) => h('a', { href: `#/topics/${enc(g.topic)}` }, g.topic) },
          { title: 'Group', render: (g) => h('a', { href: `#/groups/${enc(g.topic)}/${enc(g.name)}` }, g.name) },
          { title: 'Subscribers', num: true, render: (g) => fmtInt(g.subscribers) },
          { title: 'Lag', num: true, id: 'lag', render: (g) => [fmtInt(g.pending), lagBar(g.pending, worst)] },
          { title: 'In flight', num: true, render: (g) => fmtInt(g.inFlight) },
          { title: 'Awaiting redelivery', num: true, render: (g) => fmtInt(g.pendingRedelivery) },
          { title: 'Redelivered', num: true, render: (g) => fmtInt(g.redeliveredTotal) },
          { title: 'Dead-lettered', num: true, render: (g) => fmtInt(g.deadLetteredTotal) },
          { title: 'Oldest unacked', num: true, render: (g) => (g.inFlight > 0 ? fmtDuration(g.oldestUnackedAgeMs) : '–') },
        ],
        groups,
        { testid: 'groups-table', rowTestid: 'group-row', key: (g) => `${g.topic}/${g.name}`, empty: 'No queue groups yet: they appear when a consumer first subscribes with a group name.' },
      ),
    );
  }
  await refresh();
  return { refresh };
}

export function lagBar(value, worst) {
  const bar = h('span', { class: 'bar', title: `${value} of the largest lag ${worst}` }, h('span'));
  bar.firstChild.style.width = `${Math.round((value / worst) * 100)}%`;
  return bar;
}
