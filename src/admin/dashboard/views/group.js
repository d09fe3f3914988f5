// One group: lag and ack floor per partition, delivery settings, and moving its position.
import { api, card, enc, errorText, fmtDuration, fmtInt, flushPanel, h, panel, table, toast } from '../lib.js';

export async function mount(root, [topic, name], app) {
  app.setTitle(h('a', { href: '#/groups' }, 'Groups'), h('a', { href: `#/topics/${enc(topic)}` }, topic), name);
  const cards = h('div', { class: 'grid cards' });
  const partitions = h('div');
  const settings = h('div');
  root.append(cards, h('div', { class: 'grid two' }, flushPanel('Partitions', partitions), panel('Delivery settings', settings)), resetForm(topic, name, () => refresh()));

  async function refresh() {
    const group = await api.get(`/api/topics/${enc(topic)}/groups/${enc(name)}`);
    cards.replaceChildren(
      card('Lag', fmtInt(group.pending), 'messages not yet settled', { testid: 'group-lag', tone: group.pending > 0 ? 'warn' : 'good' }),
      card('In flight', fmtInt(group.inFlight), group.inFlight > 0 ? `oldest ${fmtDuration(group.oldestUnackedAgeMs)}` : 'nothing unacked', { testid: 'group-in-flight' }),
      card('Awaiting redelivery', fmtInt(group.pendingRedelivery), `${fmtInt(group.redeliveredTotal)} redelivered in total`),
      card('Dead-lettered', fmtInt(group.deadLetteredTotal), h('a', { href: `#/topics/${enc(group.config.deadLetterTopic)}` }, group.config.deadLetterTopic), {
        testid: 'group-dead-lettered',
        tone: group.deadLetteredTotal > 0 ? 'bad' : undefined,
      }),
      card('Subscribers', fmtInt(group.subscribers), 'on this broker'),
    );
    partitions.replaceChildren(
      table(
        [
          { title: 'Partition', num: true, render: (p) => p.partition },
          { title: 'Ack floor', num: true, render: (p) => fmtInt(p.ackFloor) },
          { title: 'Lag', num: true, render: (p) => fmtInt(p.lag) },
        ],
        group.partitions,
      ),
    );
    settings.replaceChildren(
      h(
        'dl',
        { class: 'facts' },
        [
          ['Ack timeout', fmtDuration(group.config.ackTimeoutMs)],
          ['Backoff', group.config.backoffMs.length === 0 ? 'exponential, 1 s to 5 min' : group.config.backoffMs.map(fmtDuration).join(', ')],
          ['Deliveries max', fmtInt(group.config.deliveriesMax)],
          ['Dead letters to', group.config.deadLetterTopic],
        ].map(([label, value]) => [h('dt', null, label), h('dd', null, value)]),
      ),
    );
  }
  await refresh();
  return { refresh };
}

function resetForm(topic, name, after) {
  const to = h('select', { 'aria-label': 'reset to' }, h('option', { value: 'latest' }, 'Latest (skip everything)'), h('option', { value: 'earliest' }, 'Earliest (replay everything)'), h('option', { value: 'offset' }, 'Offset'), h('option', { value: 'time' }, 'Time'));
  const input = h('input', { hidden: true, 'aria-label': 'reset position' });
  to.addEventListener('change', () => {
    input.hidden = to.value === 'latest' || to.value === 'earliest';
    input.type = to.value === 'time' ? 'datetime-local' : 'number';
  });
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: async (event) => {
        event.preventDefault();
        const position = to.value === 'offset' ? { offset: Number(input.value) } : to.value === 'time' ? { time: new Date(input.value).toISOString() } : to.value;
        if (!confirm(`Move group ${name} of ${topic} to ${typeof position === 'string' ? position : input.value}?`)) return;
        try {
          const group = await api.post(`/api/topics/${enc(topic)}/groups/${enc(name)}/reset`, { to: position });
          toast(`Group ${name} reset; lag is now ${fmtInt(group.pending)}`);
          await after();
        } catch (error) {
          toast(errorText(error), 'error');
        }
      },
    },
    to,
    input,
    h('button', { class: 'primary', type: 'submit' }, 'Reset position'),
  );
  return panel('Move the group', h('div', null, h('p', { class: 'muted' }, 'Every message before the new position counts as settled; every one from it on is delivered again.'), form));
}
