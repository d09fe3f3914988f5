import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimFileSystem } from './sim-fs.js';
import { seededRandom } from './random.js';

const bytes = (text: string): Buffer => Buffer.from(text);

/** A filesystem with a durable directory `/d`, as a log directory is after setup. */
async function withDir(options: ConstructorParameters<typeof SimFileSystem>[0] = {}): Promise<SimFileSystem> {
  const fs = new SimFileSystem(options);
  await fs.mkdir('/d');
  await fs.syncDir('/');
  return fs;
}

async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
  return undefined;
}

test('sim-fs - reads see written bytes; positional writes past the end leave zeros', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a', 'create');
  await file.write(bytes('hello'), 0);
  await file.write(bytes('!'), 7);
  assert.equal(await file.size(), 8);
  const buffer = Buffer.alloc(10);
  assert.equal(await file.read(buffer, 1, 9, 0), 8);
  assert.deepEqual(buffer.subarray(1, 9), Buffer.from('hello\0\0!'));
  assert.equal(await file.read(buffer, 0, 4, 8), 0);
  await file.truncate(2);
  assert.deepEqual(await fs.readFile('/d/a'), bytes('he'));
  await file.close();
});

test('sim-fs - a crash keeps datasynced bytes and drops the rest', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a', 'create');
  await fs.syncDir('/d');
  await file.write(bytes('durable'), 0);
  await file.datasync();
  await file.write(bytes('-lost'), 7);
  await file.write(bytes('X'), 0);
  assert.deepEqual(fs.fileBytes('/d/a'), bytes('Xurable-lost'));
  assert.deepEqual(fs.fileBytes('/d/a', 'durable'), bytes('durable'));
  fs.crash({ random: seededRandom(1) });
  assert.deepEqual(await fs.readFile('/d/a'), bytes('durable'));
});

test('sim-fs - an unsynced truncate is undone by a crash', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a', 'create');
  await fs.syncDir('/d');
  await file.write(bytes('0123456789'), 0);
  await file.datasync();
  await file.truncate(3);
  await file.write(bytes('abc'), 3);
  fs.crash({ random: seededRandom(1) });
  assert.deepEqual(await fs.readFile('/d/a'), bytes('0123456789'));
});

test('sim-fs - a datasync after truncate and rewrite makes the new bytes durable', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a', 'create');
  await fs.syncDir('/d');
  await file.write(bytes('0123456789'), 0);
  await file.datasync();
  await file.truncate(3);
  await file.write(bytes('ab'), 3);
  await file.datasync();
  fs.crash({ random: seededRandom(1) });
  assert.deepEqual(await fs.readFile('/d/a'), bytes('012ab'));
});

test('sim-fs - a file whose directory entry was never synced vanishes in a crash', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/new', 'create');
  await file.write(bytes('synced data'), 0);
  await file.datasync();
  const report = fs.crash({ random: seededRandom(1) });
  assert.deepEqual(report.pathsLost, ['/d/new']);
  assert.equal(await fs.stat('/d/new'), null);
  assert.deepEqual(await fs.readdir('/d'), []);
});

test('sim-fs - a directory created but not synced in its parent vanishes with its files', async () => {
  const fs = new SimFileSystem();
  await fs.mkdir('/a/b');
  await fs.syncDir('/a');
  const file = await fs.open('/a/b/f', 'create');
  await file.datasync();
  await fs.syncDir('/a/b');
  fs.crash({ random: seededRandom(1) });
  assert.equal(await fs.stat('/a'), null);
});

test('sim-fs - rename and unlink are durable only after syncDir', async () => {
  const fs = await withDir();
  for (const name of ['old', 'gone']) {
    const file = await fs.open(`/d/${name}`, 'create');
    await file.write(bytes(name), 0);
    await file.datasync();
    await file.close();
  }
  await fs.syncDir('/d');
  await fs.rename('/d/old', '/d/new');
  await fs.unlink('/d/gone');
  assert.deepEqual((await fs.readdir('/d')).sort(), ['new']);
  fs.crash({ random: seededRandom(1) });
  assert.deepEqual((await fs.readdir('/d')).sort(), ['gone', 'old']);
  assert.deepEqual(await fs.readFile('/d/old'), bytes('old'));

  await fs.rename('/d/old', '/d/new');
  await fs.unlink('/d/gone');
  await fs.syncDir('/d');
  fs.crash({ random: seededRandom(1) });
  assert.deepEqual(await fs.readdir('/d'), ['new']);
  assert.deepEqual(await fs.readFile('/d/new'), bytes('old'));
});

test('sim-fs - atomic replace: a crash leaves the old file or the new one, never a mix', async () => {
  const fs = await withDir();
  const write = async (path: string, text: string): Promise<void> => {
    const file = await fs.open(path, 'create');
    await file.truncate(0);
    await file.write(bytes(text), 0);
    await file.datasync();
    await file.close();
  };
  await write('/d/meta', 'version-1');
  await fs.syncDir('/d');
  await write('/d/meta.tmp', 'version-2');
  await fs.rename('/d/meta.tmp', '/d/meta');
  fs.crash({ tearLastWrite: true, random: seededRandom(7) });
  assert.deepEqual(await fs.readFile('/d/meta'), bytes('version-1'));

  await write('/d/meta.tmp', 'version-2');
  await fs.rename('/d/meta.tmp', '/d/meta');
  await fs.syncDir('/d');
  fs.crash({ tearLastWrite: true, random: seededRandom(7) });
  assert.deepEqual(await fs.readFile('/d/meta'), bytes('version-2'));
  assert.deepEqual(await fs.readdir('/d'), ['meta']);
});

test('sim-fs - handles and sessions from before a crash fail with EBADF', async () => {
  const fs = await withDir();
  const session = fs.session();
  const file = await session.open('/d/a', 'create');
  fs.crash({ random: seededRandom(1) });
  assert.equal(await errorCode(file.write(bytes('x'), 0)), 'EBADF');
  assert.equal(await errorCode(file.datasync()), 'EBADF');
  assert.equal(await errorCode(file.read(Buffer.alloc(1), 0, 1, 0)), 'EBADF');
  assert.equal(await errorCode(session.open('/d/b', 'create')), 'EBADF');
  assert.equal(await errorCode(session.rename('/d/a', '/d/b')), 'EBADF');
  assert.equal(await errorCode(session.readdir('/d')), 'EBADF');
  // The filesystem itself, and a new session, go on.
  const next = fs.session();
  const again = await next.open('/d/b', 'create');
  await again.write(bytes('y'), 0);
  await again.close();
  assert.equal(await errorCode(again.write(bytes('y'), 0)), 'EBADF');
});

test('sim-fs - tearing keeps a prefix of the last unsynced write only', async () => {
  const lengths = new Set<number>();
  for (let seed = 0; seed < 64; seed++) {
    const fs = await withDir();
    const file = await fs.open('/d/a', 'create');
    await fs.syncDir('/d');
    await file.write(bytes('AAAA'), 0);
    await file.datasync();
    await file.write(bytes('BBBB'), 4);
    await file.write(bytes('CCCCCCCC'), 8);
    const report = fs.crash({ tearLastWrite: true, random: seededRandom(seed) });
    const after = (await fs.readFile('/d/a')).toString('latin1');
    if (after === 'AAAA') {
      assert.deepEqual(report.torn, []);
      lengths.add(0);
      continue;
    }
    // The earlier unsynced write (BBBB) is gone: its range reads as zeros under the torn C-prefix.
    const kept = after.length - 8;
    assert.match(after, /^AAAA\0{4}C+$/);
    assert.deepEqual(report.torn, [{ path: '/d/a', position: 8, bytesKept: kept, garbageBytes: 0 }]);
    lengths.add(kept);
  }
  assert.ok(lengths.size >= 5, `tear lengths vary with the seed, saw ${[...lengths].join(',')}`);
});

test('sim-fs - torn bytes that survived a crash survive the next one too', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a', 'create');
  await fs.syncDir('/d');
  await file.write(bytes('AAAA'), 0);
  await file.datasync();
  await file.write(bytes('BBBB'), 4);
  fs.crash({ tearLastWrite: true, random: () => 0.99 });
  assert.deepEqual(await fs.readFile('/d/a'), bytes('AAAABBBB'));
  assert.deepEqual(fs.fileBytes('/d/a', 'durable'), bytes('AAAABBBB'));
  const again = await fs.open('/d/a', 'readwrite');
  await again.write(bytes('C'), 8);
  await again.datasync();
  fs.crash({ random: () => 0.5 });
  assert.deepEqual(await fs.readFile('/d/a'), bytes('AAAABBBBC'));
});

test('sim-fs - tearing with garbage ends the kept prefix in random bytes, deterministically', async () => {
  const run = async (seed: number): Promise<Buffer> => {
    const fs = await withDir();
    const file = await fs.open('/d/a', 'create');
    await fs.syncDir('/d');
    await file.write(Buffer.alloc(1000, 0x41), 0);
    fs.crash({ tearLastWrite: true, garbage: true, random: seededRandom(seed) });
    return fs.readFile('/d/a');
  };
  let sawGarbage = false;
  for (let seed = 0; seed < 20; seed++) {
    const first = await run(seed);
    assert.deepEqual(await run(seed), first, 'same seed, same damage');
    if (first.some((byte) => byte !== 0x41)) sawGarbage = true;
  }
  assert.ok(sawGarbage);
});

test('sim-fs - a datasync clears the torn-write candidate', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a', 'create');
  await fs.syncDir('/d');
  await file.write(bytes('abc'), 0);
  await file.datasync();
  const report = fs.crash({ tearLastWrite: true, random: () => 0.99 });
  assert.deepEqual(report.torn, []);
  assert.deepEqual(await fs.readFile('/d/a'), bytes('abc'));
});

test('sim-fs - ENOSPC stores the prefix that fits, and freeing space lets writes go on', async () => {
  const fs = await withDir({ capacityBytes: 100 });
  const filler = await fs.open('/d/filler', 'create');
  await filler.write(Buffer.alloc(60), 0);
  await filler.close();
  assert.equal(await fs.freeBytes('/d'), 40);
  const file = await fs.open('/d/a', 'create');
  assert.equal(await errorCode(file.write(Buffer.alloc(50, 1), 0)), 'ENOSPC');
  assert.equal(await file.size(), 40);
  assert.equal(await fs.freeBytes('/d'), 0);
  // Overwriting inside the file needs no space.
  await file.write(Buffer.alloc(40, 2), 0);
  await file.truncate(0);
  assert.equal(await fs.freeBytes('/d'), 40);
  await fs.unlink('/d/filler');
  assert.equal(await fs.freeBytes('/d'), 100);
  await file.write(Buffer.alloc(90, 3), 0);
  fs.setCapacity(95);
  assert.equal(await errorCode(file.write(Buffer.alloc(10), 90)), 'ENOSPC');
  assert.equal(await file.size(), 95);
});

test('sim-fs - an unlinked file keeps its space until its last handle closes', async () => {
  const fs = await withDir({ capacityBytes: 100 });
  const file = await fs.open('/d/a', 'create');
  await file.write(Buffer.alloc(80), 0);
  await fs.unlink('/d/a');
  assert.equal(await fs.freeBytes('/d'), 20);
  await file.close();
  assert.equal(await fs.freeBytes('/d'), 100);
});

test('sim-fs - failNext fails exactly one matching operation, changing nothing', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a.log', 'create');
  await fs.syncDir('/d');
  fs.failNext('write', 'EIO', '.log');
  fs.failNext('datasync', 'EIO');
  fs.failNext('rename', 'EIO');
  assert.equal(await errorCode(file.write(bytes('x'), 0)), 'EIO');
  assert.equal(await file.size(), 0);
  await file.write(bytes('x'), 0);
  assert.equal(await errorCode(file.datasync()), 'EIO');
  assert.deepEqual(fs.fileBytes('/d/a.log', 'durable'), bytes(''));
  await file.datasync();
  assert.deepEqual(fs.fileBytes('/d/a.log', 'durable'), bytes('x'));
  assert.equal(await errorCode(fs.rename('/d/a.log', '/d/b.log')), 'EIO');
  assert.notEqual(await fs.stat('/d/a.log'), null);
  await fs.rename('/d/a.log', '/d/b.log');
  assert.equal(fs.counts.write, 2);
});

test('sim-fs - missing paths and wrong kinds fail like Node', async () => {
  const fs = await withDir();
  assert.equal(await errorCode(fs.open('/d/missing', 'read')), 'ENOENT');
  assert.equal(await errorCode(fs.open('/d/missing', 'readwrite')), 'ENOENT');
  assert.equal(await errorCode(fs.open('/nodir/x', 'create')), 'ENOENT');
  assert.equal(await errorCode(fs.open('/d', 'read')), 'EISDIR');
  assert.equal(await errorCode(fs.readFile('/d/missing')), 'ENOENT');
  assert.equal(await errorCode(fs.unlink('/d/missing')), 'ENOENT');
  assert.equal(await errorCode(fs.readdir('/d/missing')), 'ENOENT');
  await (await fs.open('/d/f', 'create')).close();
  assert.equal(await errorCode(fs.rmdir('/d')), 'ENOTEMPTY');
  const readOnly = await fs.open('/d/f', 'read');
  assert.equal(await errorCode(readOnly.write(bytes('x'), 0)), 'EBADF');
  await fs.unlink('/d/f');
  await fs.rmdir('/d');
  assert.equal(await fs.stat('/d'), null);
  assert.deepEqual(await fs.stat('/'), { size: 0, isDirectory: true });
});

test('sim-fs - asyncTurnsMax reorders concurrent operations, the same way for the same seed', async () => {
  const order = async (seed: number): Promise<string> => {
    const fs = new SimFileSystem({ random: seededRandom(seed), asyncTurnsMax: 3 });
    const file = await fs.open('/f', 'create');
    const done: string[] = [];
    await Promise.all(['a', 'b', 'c', 'd'].map((letter) => file.write(bytes(letter), 0).then(() => done.push(letter))));
    return done.join('');
  };
  const orders = new Set<string>();
  for (let seed = 0; seed < 20; seed++) {
    const first = await order(seed);
    assert.equal(await order(seed), first);
    orders.add(first);
  }
  assert.ok(orders.size > 1, 'completion order varies with the seed');
});

test('sim-fs - creating thousands of instances is cheap', async () => {
  const started = performance.now();
  for (let i = 0; i < 5_000; i++) {
    const fs = new SimFileSystem();
    await fs.mkdir('/d');
    fs.crash({ random: Math.random });
  }
  assert.ok(performance.now() - started < 2_000);
});

test('sim-fs - cutPowerAfter stops the disk after n operations; the crash keeps what was synced before', async () => {
  const fs = await withDir();
  const file = await fs.open('/d/a', 'create');
  await fs.syncDir('/d');
  fs.cutPowerAfter(2);
  await file.write(bytes('one'), 0);
  await file.datasync();
  let finished = false;
  void file.write(bytes('two'), 3).then(() => (finished = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(finished, false, 'the third operation never completes');
  const report = fs.crash({ random: seededRandom(1) });
  assert.equal(report.operationsCut, 1);
  assert.deepEqual(await fs.readFile('/d/a'), bytes('one'));
});
