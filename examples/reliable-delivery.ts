// README.md, "Reliable delivery": from the clone, while `npm start` runs the broker:
//   node --import tsx examples/reliable-delivery.ts        (FERRY_PORT names another port)

import { connect } from 'ferry/client';

const client = await connect({ host: '127.0.0.1', port: Number(process.env.FERRY_PORT ?? 7700) });
await client.createTopic('jobs');
const sub = await client.subscribe('jobs', {
  group: 'workers', ackTimeoutMs: 30_000, backoffMs: [1000, 2000, 4000], deliveriesMax: 16, deadLetterTopic: 'jobs.dlq',
});
await client.publish('jobs', Buffer.from('resize photo 7'), { id: 'job-7' });              // id: exactly-once publish
await client.publish('jobs', Buffer.from('send report'), { id: 'job-8', delayMs: 1000 });  // or deliverAt: Date
let handled = 0;
for await (const msg of sub) {
  console.log(msg.value.toString(), 'delivery', msg.deliveryCount);                        // 1 on first delivery
  if (msg.value.toString() === 'resize photo 7') await msg.reject('no such photo');         // to jobs.dlq, now
  else await msg.ack();                    // or: msg.nack(), msg.nack({ delayMs }), msg.touch()
  if (++handled === 2) break;
}
const { moved } = await client.redrive('jobs.dlq', { limit: 100 });                         // dead letters back to jobs
console.log('redriven', moved);
await client.close();
