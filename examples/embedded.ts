// README.md, "Embedded": the broker inside this process, its data in ./embedded-data.
//   node --import tsx examples/embedded.ts

import { Broker } from 'ferry';

const broker = await Broker.open({ dir: './embedded-data' });   // its own directory: one broker per data directory
if (!broker.listTopics().some((topic) => topic.name === 'orders')) await broker.createTopic('orders');
const { offset } = await broker.publish('orders', 'hi', { key: 'k1' });
for await (const msg of await broker.subscribe('orders', { group: 'billing', from: 'earliest' })) {
  await msg.ack();
  if (msg.offset === offset) break;                 // stop at the message just published
}
const { port } = await broker.listen({ port: 0 });  // optional: serve TCP clients from the same broker (0: any free port)
console.log(`TCP clients can connect to port ${port}`);
await broker.close();                               // ends every subscription, releases the directory
