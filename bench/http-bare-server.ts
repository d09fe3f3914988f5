/**
 * The ceiling of a Node HTTP server on this machine, for bench/http.ts: node:http, HTTP/1.1
 * keep-alive, reading each request's body whole and answering a small JSON body, nothing else.
 *
 *   node bench/http-bare-server.ts <port>     (run with --import tsx)
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: http-bare-server.ts <port>');
const answer = '{"partition":0,"offset":0,"durability":"synced"}';

createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
    res.end(answer);
  });
}).listen(port, '127.0.0.1');
