// One topic: its partitions and groups, a message browser (newest, from an offset, from a time,
// or by key), a form to publish a test message, and purge/delete.
import { api, enc, errorText, fmtBytes, fmtDuration, fmtInt, fmtRetention, fmtTime, flushPanel, h, panel, table, toast } from '../lib.js';

export async function mount(root, [name], app) {
  app.setTitle(h('a', { href: '#/topics' }, 'Topics'), name);
  const summary = h('div', { class: 'grid cards' });
  const partitionsBox = h('div');
  const groupsBox = h('div');
  const configBox = h('div');
  const messagesBox = h('div');
  const browser = messageBrowser(name, messagesBox);
  const deadLetterActions = h('div', { class: 'toolbar' });

  root.append(
    summary,
    deadLetterActions,
    h('div', { class: 'grid two' }, flushPanel('Partitions', partitionsBox), flushPanel('Groups', groupsBox)),
    flushPanel('Messages', h('div', null, h('div', { class: 'panel-head' }, browser.controls), messagesBox)),
    h('div', { class: 'grid two' }, panel('Settings', configBox), publishForm(name, () => browser.load('latest'))),
    dangerZone(name, app, () => browser.load('latest')),
  );

  async function refresh() {
    const topic = await api.get(`/api/topics/${enc(name)}`);
    summary.replaceChildren(
      stat('Messages', fmtInt(topic.messages), `${fmtInt(topic.appended)} appended in total`, 'topic-messages'),
      stat('On disk', fmtBytes(topic.bytes), `${fmtInt(topic.segments)} segments`),
      stat('Partitions', fmtInt(topic.partitions.length), topic.config.durability + ' durability'),
      stat('Groups', fmtInt(topic.groups.filter((g) => !g.internal).length), topic.deadLetter ? `${fmtInt(topic.deadLetterWaiting)} dead letters waiting` : 'consuming this topic'),
    );
    if (topic.deadLetter) {
      deadLetterActions.replaceChildren(
        h('span', { class: 'tag dlq' }, 'dead-letter topic'),
        h('span', { class: 'muted' }, `${fmtInt(topic.deadLetterWaiting)} waiting to be redriven`),
        h('button', { class: 'primary', 'data-testid': 'topic-redrive', onclick: () => redrive(name, () => refresh()) }, 'Redrive all'),
      );
    }
    partitionsBox.replaceChildren(
      table(
        [
          { title: '#', num: true, render: (p) => p.partition },
          { title: 'Start', num: true, render: (p) => fmtInt(p.startOffset) },
          { title: 'End', num: true, render: (p) => fmtInt(p.nextOffset) },
          { title: 'Synced', num: true, render: (p) => fmtInt(p.syncedOffset + 1) },
          { title: 'Segments', num: true, render: (p) => fmtInt(p.segments) },
          { title: 'On disk', num: true, render: (p) => fmtBytes(p.bytes) },
        ],
        topic.partitions,
      ),
    );
    groupsBox.replaceChildren(
      table(
        [
          { title: 'Group', render: (g) => [h('a', { href: `#/groups/${enc(name)}/${enc(g.name)}` }, g.name), g.internal ? h('span', { class: 'tag internal' }, 'redrive position') : null] },
          { title: 'Subscribers', num: true, render: (g) => fmtInt(g.subscribers) },
          { title: 'Lag', num: true, render: (g) => fmtInt(g.pending) },
          { title: 'In flight', num: true, render: (g) => fmtInt(g.inFlight) },
          { title: 'Dead-lettered', num: true, render: (g) => fmtInt(g.deadLetteredTotal) },
        ],
        topic.groups,
        { empty: 'No group reads this topic yet.' },
      ),
    );
    configBox.replaceChildren(
      h(
        'dl',
        { class: 'facts' },
        [
          ['Durability', topic.config.durability],
          ['Sync interval', topic.config.durability === 'interval' ? fmtDuration(topic.config.syncIntervalMs) : '–'],
          ['Segment size', fmtBytes(topic.config.segmentBytes)],
          ['Retention', fmtRetention(topic.config.retention)],
          ['Dedup window', fmtDuration(topic.config.dedupWindowMs)],
        ].map(([label, value]) => [h('dt', null, label), h('dd', null, value)]),
      ),
    );
    browser.setPartitions(topic.partitions.length);
  }

  await refresh();
  await browser.load('latest');
  return { refresh };
}

function stat(label, value, sub, testid) {
  return h(
    'div',
    { class: 'panel card', 'data-testid': testid },
    h('div', { class: 'label' }, label),
    h('div', { class: 'value', 'data-testid': testid ? testid + '-value' : undefined }, value),
    h('div', { class: 'sub' }, sub),
  );
}

async function redrive(topic, done) {
  try {
    const result = await api.post(`/api/topics/${enc(topic)}/redrive`, {});
    toast(`Redrove ${result.moved} message${result.moved === 1 ? '' : 's'} from ${topic}`);
    await done();
  } catch (error) {
    toast(errorText(error), 'error');
  }
}

function messageBrowser(topic, box) {
  const partition = h('select', { 'aria-label': 'partition', 'data-testid': 'browse-partition' }, h('option', { value: 0 }, 'partition 0'));
  const mode = h(
    'select',
    { 'aria-label': 'browse mode', 'data-testid': 'browse-mode' },
    h('option', { value: 'latest' }, 'Newest'),
    h('option', { value: 'offset' }, 'From offset'),
    h('option', { value: 'time' }, 'From time'),
    h('option', { value: 'key' }, 'With key'),
  );
  const input = h('input', { placeholder: '', 'aria-label': 'browse value', 'data-testid': 'browse-input', hidden: true });
  const limit = h('select', { 'aria-label': 'page size' }, [20, 50, 100, 500].map((n) => h('option', { value: n, selected: n === 20 }, `${n} per page`)));
  const status = h('span', { class: 'muted' });
  let page = null;
  mode.addEventListener('change', () => {
    input.hidden = mode.value === 'latest';
    input.type = mode.value === 'time' ? 'datetime-local' : mode.value === 'offset' ? 'number' : 'text';
    input.placeholder = mode.value === 'key' ? 'key text' : mode.value === 'offset' ? 'offset' : '';
  });
  const query = (offset) => {
    const params = new URLSearchParams({ partition: partition.value, limit: limit.value });
    if (offset !== undefined) params.set('offset', String(Math.max(0, offset)));
    else if (mode.value === 'offset' && input.value !== '') params.set('offset', input.value);
    else if (mode.value === 'time' && input.value !== '') params.set('time', new Date(input.value).toISOString());
    else if (mode.value === 'key') params.set('key', input.value);
    return params;
  };
  async function load(_how, offset) {
    status.textContent = 'loading…';
    try {
      page = await api.get(`/api/topics/${enc(topic)}/messages?${query(offset)}`);
      render();
    } catch (error) {
      status.textContent = '';
      box.replaceChildren(h('div', { class: 'error-box', role: 'alert' }, errorText(error)));
    }
  }
  function render() {
    const first = page.messages[0]?.offset;
    status.textContent =
      page.messages.length === 0
        ? `no messages (partition holds offsets ${fmtInt(page.startOffset)} to ${fmtInt(page.endOffset - 1)})`
        : `offsets ${fmtInt(first)}–${fmtInt(page.messages.at(-1).offset)} of ${fmtInt(page.startOffset)}–${fmtInt(page.endOffset - 1)}`;
    older.disabled = first === undefined || first <= page.startOffset;
    newer.disabled = page.nextOffset >= page.endOffset;
    box.replaceChildren(messagesTable(page.messages));
  }
  const older = h('button', { type: 'button', onclick: () => load('page', (page?.messages[0]?.offset ?? 0) - Number(limit.value)) }, '← Older');
  const newer = h('button', { type: 'button', onclick: () => load('page', page?.nextOffset ?? 0) }, 'Newer →');
  const controls = h(
    'form',
    { class: 'toolbar', onsubmit: (event) => (event.preventDefault(), load('query')) },
    partition,
    mode,
    input,
    limit,
    h('button', { class: 'primary', type: 'submit', 'data-testid': 'browse-load' }, 'Load'),
    older,
    newer,
    status,
  );
  return {
    controls,
    load,
    setPartitions(count) {
      if (partition.options.length === count) return;
      const selected = partition.value;
      partition.replaceChildren(...Array.from({ length: count }, (_, i) => h('option', { value: i, selected: String(i) === selected }, `partition ${i}`)));
    },
  };
}

/** A page of messages: a row each, expanded by a click. */
function messagesTable(messages) {
  return table(
    [
      { title: 'Offset', num: true, id: 'offset', render: (m) => h('span', { class: 'mono' }, m.offset) },
      { title: 'Time', render: (m) => h('span', { class: 'mono', title: String(m.timestampMs) }, fmtTime(m.timestampMs)) },
      { title: 'Key', id: 'key', render: (m) => (m.key === null ? h('span', { class: 'muted' }, '–') : m.key.encoding === 'text' ? h('span', { class: 'key-text' }, m.key.data) : bytesView(m.key)) },
      { title: 'Headers', class: 'headers-cell', render: (m) => m.headers.map(([k, v]) => h('span', { class: 'chip', title: `${k}: ${v}` }, `${k}=${v.length > 24 ? v.slice(0, 24) + '…' : v}`)) },
      {
        title: 'Value',
        class: 'value-cell',
        id: 'value',
        render: (m) => [bytesView(m.value), m.valueTruncated ? h('span', { class: 'muted' }, ` … ${fmtBytes(m.valueBytes)} in all`) : null],
      },
    ],
    messages,
    {
      testid: 'messages-table',
      rowTestid: 'message-row',
      key: (m) => String(m.offset),
      empty: 'No messages match.',
      decorate: (tr) => {
        tr.classList.add('clickable');
        tr.title = 'click to expand';
        tr.addEventListener('click', () => tr.classList.toggle('expanded'));
      },
    },
  );
}

function bytesView(encoded) {
  if (encoded.encoding === 'text') return h('span', { class: 'value-text' }, encoded.data);
  return h('span', null, h('span', { class: 'tag b64', title: 'not printable text: shown as base64' }, 'base64'), ' ', h('span', { class: 'value-text' }, encoded.data));
}

function publishForm(topic, after) {
  const value = h('textarea', { placeholder: '{"hello": "world"}', 'aria-label': 'message value', 'data-testid': 'publish-value' });
  const key = h('input', { placeholder: 'key (optional)', 'aria-label': 'message key' });
  const headers = h('input', { placeholder: 'headers: name=value, name=value', 'aria-label': 'message headers' });
  const form = h(
    'form',
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const pairs = headers.value
          .split(',')
          .map((pair) => pair.trim())
          .filter(Boolean)
          .map((pair) => [pair.slice(0, pair.indexOf('=')).trim(), pair.slice(pair.indexOf('=') + 1).trim()]);
        if (pairs.some(([name]) => name === '')) return toast('headers must look like name=value', 'error');
        try {
          const result = await api.post(`/api/topics/${enc(topic)}/messages`, { value: value.value, key: key.value === '' ? null : key.value, headers: pairs });
          toast(`Published to partition ${result.partition} at offset ${result.offset} (${result.durability})`);
          value.value = '';
          await after();
        } catch (error) {
          toast(errorText(error), 'error');
        }
      },
    },
    h('div', { class: 'grid', style: 'gap:8px' }, value, h('div', { class: 'toolbar' }, key, headers, h('button', { class: 'primary', type: 'submit', 'data-testid': 'publish-send' }, 'Publish'))),
  );
  return panel('Publish a test message', form);
}

function dangerZone(topic, app, after) {
  const purge = async () => {
    if (!confirm(`Purge every message of ${topic}? Its groups are removed too.`)) return;
    try {
      const result = await api.post(`/api/topics/${enc(topic)}/purge`, {});
      toast(`Purged ${topic}${result.removedGroups.length > 0 ? `; removed groups ${result.removedGroups.join(', ')}` : ''}`);
      await after();
    } catch (error) {
      toast(errorText(error), 'error');
    }
  };
  const remove = async () => {
    if (!confirm(`Delete topic ${topic} with all its messages and groups?`)) return;
    try {
      await api.del(`/api/topics/${enc(topic)}`);
      toast(`Deleted ${topic}`);
      app.navigate('/topics');
    } catch (error) {
      toast(errorText(error), 'error');
    }
  };
  return h(
    'details',
    { class: 'panel' },
    h('summary', null, 'Danger zone'),
    h('div', { class: 'toolbar' }, h('button', { class: 'danger', onclick: purge }, 'Purge messages'), h('button', { class: 'danger', onclick: remove }, 'Delete topic')),
  );
}
