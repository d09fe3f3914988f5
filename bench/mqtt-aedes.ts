/**
 * aedes as `npm run bench -- --mqtt` runs it: its default in-memory persistence, on a loopback
 * port given as the first argument, in a process of its own (started and stopped by PID).
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
server.listen(port, '127.0.0.1', () => process.stderr.write(`aedes listening on ${port}\n`));
process.on('SIGTERM', () => server.close(() => broker.close(() => process.exit(0))));
