// README.md, "Security": a client of a broker started with --users and TLS (docs/SECURITY.md).
//   FERRY_HOST=ferry.internal FERRY_CA=ca.crt FERRY_PASSWORD=... node --import tsx examples/secure-client.ts

import { readFileSync } from 'node:fs';
import { connect } from 'ferry/client';

const host = process.env.FERRY_HOST ?? 'ferry.internal';
const password = process.env.FERRY_PASSWORD;                 // from the environment or a file, never a literal
const ca = readFileSync(process.env.FERRY_CA ?? 'ca.crt');   // the CA that signed the broker's certificate
const client = await connect({ host, port: Number(process.env.FERRY_PORT ?? 7700), user: 'alice', password, tls: { ca } }); // AUTH_FAILED if wrong
console.log((await client.listTopics()).map((topic) => topic.name));
await client.close();
