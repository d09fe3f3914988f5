/**
 * The StatsD-style baseline of the UDP benchmark, a child process: a Node UDP server that counts
 * the datagrams it reads (no parsing), with the same receive buffer asked as Ferry's UDP port.
 * What it loses is what Node and the kernel lose on this machine before any broker work. Reports
 * its port once bound, and its count on each 'count' message.
 *
 * With a file path as its second argument it also stores them, the least a durable ingest does:
 * the datagrams read since the last write are appended to the file in one write, then one
 * fdatasync, one write and sync at a time (group commit, as an `always` topic), and a datagram is
 * counted once synced. The benchmark deletes the file's directory after the counter ends.
 */
import { createSocket } from 'node:dgram';
import { fdatasync, openSync, writev } from 'node:fs';

const receiveBufferBytes = Number(process.argv[2]);
const storePath = process.argv[3];
const socket = createSocket({ type: 'udp4', recvBufferSize: receiveBufferBytes });
let received = 0;

/** Appends what arrives to `path`, one writev and one fdatasync per group; `received` counts what is synced. */
function storing(path: string): (datagram: Buffer) => void {
  const fd = openSync(path, 'a');
  let pending: Buffer[] = [];
  let writing = false;
  const flush = (): void => {
    if (writing || pending.length === 0) return;
    writing = true;
    const group = pending;
    pending = [];
    writev(fd, group, (writeError) => {
      if (writeError) throw writeError;
      fdatasync(fd, (syncError) => {
        if (syncError) throw syncError;
        received += group.length;
        writing = false;
        flush();
      });
    });
  };
  return (datagram) => {
    pending.push(datagram);
    if (pending.length === 1) setImmediate(flush);
  };
}

const onDatagram = storePath === undefined ? () => void (received += 1) : storing(storePath);
socket.on('message', onDatagram);
socket.bind(0, '127.0.0.1', () => {
  process.send!({ port: socket.address().port, receiveBufferBytes: socket.getRecvBufferSize() });
});
process.on('message', (message) => {
  if (message === 'count') process.send!({ received });
});
process.on('disconnect', () => socket.close());
