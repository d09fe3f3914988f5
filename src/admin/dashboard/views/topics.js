// Topics: every topic with its size and groups, and a form to create one.
import { api, enc, errorText, fmtBytes, fmtInt, fmtRetention, flushPanel, h, table, toast } from '../lib.js';

export async function mount(root, _params, app) {
  app.setTitle('Topics');
  const list = h('div');
  const name = h('input', { name: 'name', placeholder: 'orders', required: true, pattern: '[A-Za-z0-9._\\-]+', 'aria-label': 'topic name' });
  const partitions = h('input', { name: 'partitions', type: 'number', min: 1, max: 1024, value: 1, class: 'narrow', 'aria-label': 'partitions' });
  const durability = h(
    'select',
    { name: 'durability', 'aria-label': 'durability' },
    h('option', { value: 'always' }, 'always (fsync)'),
    h('option', { value: 'interval' }, 'interval'),
    h('option', { value: 'never' }, 'never'),
  );
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await api.post('/api/topics', { name: name.value.trim(), partitions: Number(partitions.value), durability: durability.value });
          toast(`Created topic ${name.value}`);
          name.value = '';
          await refresh();
        } catch (error) {
          toast(errorText(error), 'error');
        }
      },
    },
    h('label', { class: 'field' }, 'Name', name),
    h('label', { class: 'field' }, 'Partitions', partitions),
    h('label', { class: 'field' }, 'Durability', durability),
    h('label', { class: 'field' }, '\u00a0', h('button', { class: 'primary', type: 'submit' }, 'Create topic')),
  );
  root.append(h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', null, 'New topic')), form), flushPanel('All topics', list));

  async function refresh() {
    const topics = await api.get('/api/topics');
    list.replaceChildren(
      table(
        [
          {
            title: 'Topic',
            render: (t) => [h('a', { href: `#/topics/${enc(t.name)}` }, t.name), t.deadLetter ? h('span', { class: 'tag dlq' }, 'dead letters') : null],
          },
          { title: 'Partitions', num: true, render: (t) => fmtInt(t.partitions) },
          { title: 'Durability', render: (t) => t.durability },
          { title: 'Messages', num: true, id: 'messages', render: (t) => fmtInt(t.messages) },
          { title: 'On disk', num: true, render: (t) => fmtBytes(t.bytes) },
          { title: 'Segments', num: true, render: (t) => fmtInt(t.segments) },
          { title: 'Retention', render: (t) => fmtRetention(t.retention) },
          { title: 'Groups', class: 'wrap', render: (t) => (t.groups.length === 0 ? h('span', { class: 'muted' }, 'none') : t.groups.map((g) => h('a', { class: 'chip', href: `#/groups/${enc(t.name)}/${enc(g)}` }, g))) },
        ],
        topics,
        { testid: 'topics-table', rowTestid: 'topic-row', key: (t) => t.name, empty: 'No topics yet: create one above, or publish with `ferry pub`.' },
      ),
    );
  }
  await refresh();
  return { refresh };
}
