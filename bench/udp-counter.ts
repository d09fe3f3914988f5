/**
 * The StatsD-style baseline of the UDP benchmark, a child process: a Node UDP server that only
 * counts the datagrams it reads (no parsing, no storing), with the same receive buffer asked as
 * Ferry's UDP port. What it loses is what Node and the kernel lose on this machine before any
 * broker work. Reports its port once bound, and its count on each 'count' message.
 */
import { createSocket } from 'node:dgram';

const receiveBufferBytes = Number(process.argv[2]);
const socket = createSocket({ type: 'udp4', recvBufferSize: receiveBufferBytes });
let received = 0;
socket.on('message', () => {
  received += 1;
});
socket.bind(0, '127.0.0.1', () => {
  process.send!({ port: socket.address().port, receiveBufferBytes: socket.getRecvBufferSize() });
});
process.on('message', (message) => {
  if (message === 'count') process.send!({ received });
});
process.on('disconnect', () => socket.close());
