// Dead letters: each dead-letter topic, what waits in it, which groups feed it, and redrive.
import { api, enc, errorText, fmtBytes, fmtInt, flushPanel, h, table, toast } from '../lib.js';

export async function mount(root, _params, app) {
  app.setTitle('Dead letters');
  const box = h('div');
  root.append(
    h('p', { class: 'muted' }, 'A message lands here after its group delivered it deliveriesMax times, or a consumer rejected it. Redrive moves waiting messages back to the topic they came from.'),
    flushPanel('Dead-letter topics', box),
  );

  async function redrive(topic, button) {
    button.disabled = true;
    try {
      const result = await api.post(`/api/topics/${enc(topic)}/redrive`, {});
      toast(`Redrove ${result.moved} message${result.moved === 1 ? '' : 's'} from ${topic}`);
      await refresh();
    } catch (error) {
      toast(errorText(error), 'error');
    } finally {
      button.disabled = false;
    }
  }

  async function refresh() {
    const topics = await api.get('/api/dead-letters');
    box.replaceChildren(
      table(
        [
          { title: 'Topic', render: (t) => h('a', { href: `#/topics/${enc(t.topic)}` }, t.topic) },
          { title: 'Waiting', num: true, id: 'waiting', render: (t) => h('b', null, fmtInt(t.waiting)) },
          { title: 'Stored', num: true, render: (t) => fmtInt(t.messages) },
          { title: 'On disk', num: true, render: (t) => fmtBytes(t.bytes) },
          {
            title: 'Fed by',
            class: 'wrap',
            render: (t) => (t.sources.length === 0 ? h('span', { class: 'muted' }, '–') : t.sources.map((s) => h('a', { class: 'chip', href: `#/groups/${enc(s.topic)}/${enc(s.group)}` }, `${s.topic}/${s.group}: ${fmtInt(s.deadLetteredTotal)}`))),
          },
          {
            title: '',
            render: (t) => {
              const button = h('button', { class: 'primary', 'data-testid': 'redrive', disabled: t.waiting === 0 }, 'Redrive');
              button.addEventListener('click', () => redrive(t.topic, button));
              return button;
            },
          },
        ],
        topics,
        { testid: 'dead-letters-table', rowTestid: 'dead-letter-row', key: (t) => t.topic, empty: 'No dead-letter topics: nothing has failed delivery yet.' },
      ),
    );
  }
  await refresh();
  return { refresh };
}
