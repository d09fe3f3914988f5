// Cluster: the brokers (alive, address, topics led, replica lag) and each replicated topic's
// leader, epoch, in-sync set and lag, from GET /api/cluster. A single broker says so.
import { api, card, enc, fmtInt, flushPanel, h, table } from '../lib.js';

export async function mount(root, _params, app) {
  app.setTitle('Cluster');
  const cards = h('div', { class: 'grid cards' });
  const brokers = h('div');
  const topics = h('div');
  root.append(cards, flushPanel('Brokers', brokers), flushPanel('Topics', topics));

  async function refresh() {
    const view = await api.get('/api/cluster');
    if (!view.cluster) {
      cards.replaceChildren();
      brokers.replaceChildren(h('div', { class: 'empty', 'data-testid': 'cluster-single' }, 'This broker runs alone (started without --etcd): every topic has one copy, here.'));
      topics.replaceChildren();
      return;
    }
    const alive = view.brokers.filter((b) => b.alive).length;
    const lagging = view.topics.filter((t) => t.error === undefined && t.inSync.length < t.replicas.length).length;
    cards.replaceChildren(
      card('This broker', view.nodeId, view.etcdUp ? 'reaches etcd' : 'etcd unreachable', { testid: 'cluster-node', tone: view.etcdUp ? undefined : 'bad' }),
      card('Brokers alive', `${alive} / ${view.brokers.length}`, undefined, { testid: 'cluster-alive', tone: alive < view.brokers.length ? 'warn' : 'good' }),
      card('Topics', fmtInt(view.topics.length), `${fmtInt(lagging)} with a replica out of sync`, { testid: 'cluster-topics', tone: lagging > 0 ? 'warn' : undefined }),
    );
    brokers.replaceChildren(
      table(
        [
          { title: 'Node', id: 'node', render: (b) => [h('b', null, b.nodeId), b.nodeId === view.nodeId ? h('span', { class: 'tag' }, 'this broker') : null] },
          { title: 'Address', id: 'address', render: (b) => (b.address === '' ? h('span', { class: 'muted' }, 'unknown') : h('span', { class: 'mono' }, b.address)) },
          { title: 'State', id: 'alive', render: (b) => h('span', { class: `pill ${b.alive ? 'good' : 'bad'}` }, b.alive ? 'alive' : 'gone') },
          { title: 'Topics led', num: true, id: 'led', render: (b) => fmtInt(b.topicsLed) },
          { title: 'Replica lag', num: true, id: 'lag', render: (b) => fmtInt(b.replicaLag) },
        ],
        view.brokers,
        { testid: 'brokers-table', rowTestid: 'broker-row', key: (b) => b.nodeId, empty: 'No broker is registered.' },
      ),
    );
    topics.replaceChildren(
      table(
        [
          { title: 'Topic', render: (t) => h('a', { href: `#/topics/${enc(t.name)}` }, t.name) },
          { title: 'Leader', id: 'leader', render: (t) => (t.leader === '' ? h('span', { class: 'pill bad' }, 'none') : t.leader) },
          { title: 'Epoch', num: true, id: 'epoch', render: (t) => fmtInt(t.epoch) },
          { title: 'Replicas', class: 'wrap', id: 'replicas', render: (t) => t.replicas.map((r) => h('span', { class: 'chip' }, r)) },
          {
            title: 'In sync',
            class: 'wrap',
            id: 'in-sync',
            render: (t) => (t.error !== undefined ? h('span', { class: 'muted', title: t.error.message }, 'unknown') : t.inSync.slice().sort().join(' ')),
          },
          { title: 'Lag', num: true, id: 'lag', render: (t) => (t.lag === null ? h('span', { class: 'muted', title: t.error?.message ?? 'asked of the leader' }, '–') : fmtInt(t.lag)) },
        ],
        view.topics,
        {
          testid: 'cluster-topics-table',
          rowTestid: 'cluster-topic-row',
          key: (t) => t.name,
          empty: 'No topics yet.',
          decorate: (tr, t) => {
            if ((t.error === undefined && t.inSync.length < t.replicas.length) || t.leader === '') tr.title = 'a replica is out of sync or no leader is elected';
          },
        },
      ),
    );
  }
  await refresh();
  return { refresh };
}
