// README.md, a cluster (docs/CLUSTERING.md): any of its brokers will do.
//   FERRY_SERVERS=h1:7700,h2:7700,h3:7700 node --import tsx examples/cluster.ts

import { connect } from 'ferry/client';

const servers = (process.env.FERRY_SERVERS ?? '10.0.0.1:7700,10.0.0.2:7700,10.0.0.3:7700').split(',');
const cluster = await connect({ servers });
await cluster.createTopic('orders', { replicas: 3, minInSync: 2, durability: 'always' });
console.log(await cluster.clusterStatus());   // per broker: node id, address, alive, topics led, replica lag
await cluster.close();
