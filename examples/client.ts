// README.md, "Use it from code": from the clone, after "Try it", while `npm start` runs the broker:
//   node --import tsx examples/client.ts        (FERRY_PORT names another port)

import { connect } from 'ferry/client';            // the client needs nothing beyond Node itself

const client = await connect({ host: '127.0.0.1', port: Number(process.env.FERRY_PORT ?? 7700) });
const { offset } = await client.publish('orders', Buffer.from('hi'), { key: 'k1', headers: { source: 'web' } });
const sub = await client.subscribe('orders', { group: 'billing', from: 'earliest', prefetch: 256 });
for await (const msg of sub) {
  console.log(msg.offset, msg.value.toString());   // 0 hello (from "Try it"), then 1 hi
  await msg.ack();
  if (msg.offset === offset) break;                 // a consumer loops for ever; this one stops at its own message
}
await client.close();
