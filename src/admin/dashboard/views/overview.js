// Overview: live rates in and out, the broker's vital numbers, and where attention is needed
// (groups with the most lag, dead letters waiting).
import { legend, lineChart } from '../chart.js';
import { api, card, enc, fmtBytes, fmtCompact, fmtDuration, fmtInt, h, panel, table } from '../lib.js';

const IN = '#2563eb';
const OUT = '#10b981';

export async function mount(root, _params, app) {
  app.setTitle('Overview');
  const cards = h('div', { class: 'grid cards' });
  const throughputChart = h('div', { class: 'chart', 'data-testid': 'chart-throughput' });
  const throughputLegend = h('div');
  const networkChart = h('div', { class: 'chart', 'data-testid': 'chart-network' });
  const networkLegend = h('div');
  const details = h('div', { class: 'grid three' });
  const attention = h('div', { class: 'grid two' });
  root.append(
    cards,
    h(
      'div',
      { class: 'grid two' },
      panel('Messages per second', throughputChart, throughputLegend),
      panel('Network bytes per second', networkChart, networkLegend),
    ),
    details,
    attention,
  );

  let groups = [];
  let topics = [];
  const loadLists = async () => {
    [groups, topics] = await Promise.all([api.get('/api/groups'), api.get('/api/topics')]);
  };

  const render = (data) => {
    const history = app.sampler.history;
    cards.replaceChildren(...statCards(data, history));
    const rateSeries = [
      { name: 'In', color: IN, points: history.in, testid: 'legend-in' },
      { name: 'Out', color: OUT, points: history.out, testid: 'legend-out' },
    ];
    lineChart(throughputChart, rateSeries, { label: 'messages per second' });
    throughputLegend.replaceChildren(legend(rateSeries, fmtCompact, '/s'));
    const netSeries = [
      { name: 'Received', color: IN, points: history.netIn },
      { name: 'Sent', color: OUT, points: history.netOut },
    ];
    lineChart(networkChart, netSeries, { format: fmtBytes, binary: true, label: 'network bytes per second' });
    networkLegend.replaceChildren(legend(netSeries, fmtBytes, '/s'));
    details.replaceChildren(...detailPanels(data));
    attention.replaceChildren(...attentionPanels(groups, topics));
  };

  const onSample = (data) => render(data);
  app.sampler.listeners.add(onSample);
  await loadLists().catch(() => undefined);
  render(app.sampler.latest);
  return {
    refresh: async () => {
      await loadLists();
      render(app.sampler.latest);
    },
    dispose: () => app.sampler.listeners.delete(onSample),
  };
}

function facts(rows) {
  return h('dl', { class: 'facts' }, rows.map(([label, value]) => [h('dt', null, label), h('dd', null, value)]));
}

/** The cards across the top: rates, what is stored, lag, dead letters, connections. */
function statCards(data, history) {
  const rateIn = history.in.at(-1)?.v;
  const rateOut = history.out.at(-1)?.v;
  const totals = data?.totals;
  const server = data?.server;
  return [
    card('Messages in', rateIn === undefined ? '–' : `${fmtCompact(rateIn)}/s`, `${fmtInt(totals?.appended)} appended in total`, { testid: 'stat-rate-in' }),
    card('Messages out', rateOut === undefined ? '–' : `${fmtCompact(rateOut)}/s`, `${fmtInt(data?.traffic.delivered)} delivered since start`, { testid: 'stat-rate-out' }),
    card('Messages stored', fmtInt(totals?.messages), `${fmtInt(totals?.topics)} topics · ${fmtInt(totals?.partitions)} partitions`, { testid: 'stat-messages' }),
    card('Consumer lag', fmtInt(totals?.lag), `${fmtInt(totals?.groups)} groups · ${fmtInt(totals?.inFlight)} in flight`, {
      testid: 'stat-lag',
      tone: (totals?.lag ?? 0) > 0 ? 'warn' : 'good',
    }),
    card('Dead letters waiting', fmtInt(totals?.deadLetterWaiting), 'across dead-letter topics', {
      testid: 'stat-dead-letters',
      tone: (totals?.deadLetterWaiting ?? 0) > 0 ? 'bad' : 'good',
    }),
    card('Connections', fmtInt(server?.connections ?? 0), server ? `${fmtInt(server.slowConsumersTotal)} slow consumers closed` : 'no TCP listener', { testid: 'stat-connections' }),
  ];
}

/** Storage, health and the broker's own facts. */
function detailPanels(data) {
  const totals = data?.totals;
  const server = data?.server;
  return [
    panel(
      'Storage',
      facts([
        ['On disk', fmtBytes(totals?.bytes)],
        ['Segments', fmtInt(totals?.segments)],
        ['Topics', fmtInt(totals?.topics)],
        ['Partitions', fmtInt(totals?.partitions)],
      ]),
    ),
    panel(
      'Health',
      facts([
        ['State', h('span', { class: `pill ${data?.ready ? 'good' : 'warn'}` }, data?.ready ? 'Ready' : 'Recovering')],
        ['Uptime', fmtDuration(data?.process?.uptimeMs)],
        ['Memory (RSS)', fmtBytes(data?.process?.rssBytes)],
        ['Heap used', fmtBytes(data?.process?.heapUsedBytes)],
      ]),
    ),
    panel(
      'Broker',
      facts([
        ['Version', data ? `${data.info.version} (Node ${data.info.node})` : '–'],
        ['Protocol', data?.info.tcp ? `${data.info.tcp.host}:${data.info.tcp.port}` : 'embedded'],
        ['Data', data?.info.dir ?? '–'],
        ['Traffic', server ? `${fmtBytes(server.bytesIn)} in · ${fmtBytes(server.bytesOut)} out` : '–'],
      ]),
    ),
  ];
}

/** Where attention is needed: the groups with the most lag, dead letters waiting. */
function attentionPanels(groups, topics) {
  const lagging = groups.filter((g) => g.pending > 0).sort((a, b) => b.pending - a.pending).slice(0, 6);
  const dead = topics.filter((t) => t.deadLetter && t.deadLetterWaiting > 0).sort((a, b) => b.deadLetterWaiting - a.deadLetterWaiting).slice(0, 6);
  return [
    panel(
      'Groups with the most lag',
      table(
        [
          { title: 'Group', render: (g) => h('a', { href: `#/groups/${enc(g.topic)}/${enc(g.name)}` }, `${g.topic} / ${g.name}`) },
          { title: 'Lag', num: true, render: (g) => fmtInt(g.pending) },
          { title: 'Oldest unacked', num: true, render: (g) => (g.inFlight > 0 ? fmtDuration(g.oldestUnackedAgeMs) : '–') },
        ],
        lagging,
        { empty: 'Every group is caught up.' },
      ),
    ),
    panel(
      'Dead letters waiting',
      table(
        [
          { title: 'Topic', render: (t) => h('a', { href: `#/topics/${enc(t.name)}` }, t.name) },
          { title: 'Waiting', num: true, render: (t) => fmtInt(t.deadLetterWaiting) },
        ],
        dead,
        { empty: 'No dead letters waiting.' },
      ),
      h('a', { href: '#/dead-letters' }, 'Manage →'),
    ),
  ];
}
