/**
 * The web dashboard in a real browser: an in-process broker and admin server on port 0, traffic
 * with a known outcome (messages, a group with lag, a dead letter), then headless Chromium through
 * playwright-core checks that the overview, a topic's messages and a group's lag show those values,
 * and that redrive from the dashboard moves the dead letter back. Skipped, with the reason printed,
 * only when /usr/bin/chromium is missing (`.ci/run` installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Broker } from '../../src/broker/broker.js';
import type { Delivery } from '../../src/broker/types.js';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { AdminServer } from '../../src/admin/admin-server.js';
import { ObservedBroker } from '../../src/admin/observed-broker.js';
import { TcpServer } from '../../src/transport/tcp/server.js';
import { connect } from '../../src/client/index.js';
import { eventually, tempDir } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Browser start plus five page visits on a loaded 2-core machine. */
const TEST_TIMEOUT_MS = 90_000;
/** One UI expectation: the dashboard polls every 1–2 s, so a value shows within a few polls. */
const UI_TIMEOUT_MS = 15_000;

const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (install it with: apt-get install -y chromium)`;
if (missing !== undefined) console.log(`# dashboard e2e skipped: ${missing}`);

test('dashboard - overview, messages, group lag and redrive show real values in Chromium', { skip: missing, timeout: TEST_TIMEOUT_MS }, async () => {
  const { chromium } = await import('playwright-core');
  await using dir = await tempDir();
  const clock = new SystemClock();
  const broker = await Broker.open({ dir: dir.path, clock, logger: silentLogger });
  const admin = await AdminServer.start({ host: '127.0.0.1', port: 0, clock, logger: silentLogger, dir: dir.path });
  const observed = new ObservedBroker(broker, admin.metrics.traffic, clock);
  const tcp = new TcpServer(observed, { clock, logger: silentLogger });
  const address = await tcp.listen(0, '127.0.0.1');
  admin.attach({ broker: observed, rawBroker: broker, connections: tcp, tcp: address });
  const client = await connect({ host: '127.0.0.1', port: address.port, name: 'e2e-producer', reconnect: false });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    // Known traffic: 5 messages; group billing acks 2, rejects 1 (→ orders.dlq), holds 2 in flight.
    await observed.createTopic('orders', { partitions: 1 });
    for (let i = 1; i <= 5; i++) await client.publish('orders', Buffer.from(`order-${i}`), { key: `customer-${i}`, headers: { source: 'e2e' } });
    const deliveries: Delivery[] = [];
    const subscription = await observed.subscribe(
      'orders',
      { group: 'billing', from: { kind: 'earliest' }, credit: 10, deliveriesMax: 3, ackTimeoutMs: 600_000 },
      { deliver: (delivery) => void deliveries.push(delivery), writable: () => true },
    );
    await eventually(() => deliveries.length === 5);
    await subscription.reject!(0, deliveries[0]!.offset, 'bad order');
    await subscription.ack(0, deliveries[1]!.offset);
    await subscription.ack(0, deliveries[2]!.offset);
    await eventually(() => broker.describeGroup('orders', 'billing').deadLetteredTotal === 1);
    assert.equal(broker.describeGroup('orders', 'billing').pending, 2);

    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const base = `http://127.0.0.1:${admin.port}`;
    const text = (selector: string): Promise<string> => page.locator(selector).first().innerText({ timeout: UI_TIMEOUT_MS });
    const expectText = (selector: string, expected: string | RegExp): Promise<unknown> =>
      eventually(
        async () => {
          const actual = (await text(selector)).trim();
          if (typeof expected === 'string' ? actual !== expected : !expected.test(actual)) throw new Error(`${selector} shows "${actual}", expected ${String(expected)}`);
        },
        { timeoutMs: UI_TIMEOUT_MS, intervalMs: 100 },
      );

    // Overview: 6 messages stored (5 + 1 dead letter), lag 2, 1 dead letter waiting, 1 client, healthy.
    await page.goto(`${base}/`);
    await expectText('[data-testid=health]', 'Healthy');
    await expectText('[data-testid=stat-messages-value]', '6');
    await expectText('[data-testid=stat-lag-value]', '2');
    await expectText('[data-testid=stat-dead-letters-value]', '1');
    await expectText('[data-testid=stat-connections-value]', '1');
    await expectText('[data-testid=legend-in]', /^In \d/);
    assert.equal(await page.locator('[data-testid=chart-throughput] svg').count(), 1);

    // A topic's messages: the five values with their keys, offsets 0..4.
    await page.goto(`${base}/#/topics/orders`);
    await eventually(async () => assert.equal(await page.locator('[data-testid=message-row]').count(), 5), { timeoutMs: UI_TIMEOUT_MS });
    for (let offset = 0; offset < 5; offset++) {
      const row = page.locator(`[data-testid=message-row][data-key="${offset}"]`);
      assert.equal((await row.locator('[data-col=value]').innerText()).trim(), `order-${offset + 1}`);
      assert.equal((await row.locator('[data-col=key]').innerText()).trim(), `customer-${offset + 1}`);
    }
    await expectText('[data-testid=topic-messages-value]', '5');
    // Browse by key finds exactly one message.
    await page.selectOption('[data-testid=browse-mode]', 'key');
    await page.fill('[data-testid=browse-input]', 'customer-4');
    await page.click('[data-testid=browse-load]');
    await eventually(async () => assert.equal(await page.locator('[data-testid=message-row]').count(), 1), { timeoutMs: UI_TIMEOUT_MS });
    assert.equal((await text('[data-testid=message-row] [data-col=value]')).trim(), 'order-4');

    // The group's lag, in the list and on its page.
    await page.goto(`${base}/#/groups`);
    await expectText('[data-testid=group-row][data-key="orders/billing"] [data-col=lag]', '2');
    await page.goto(`${base}/#/groups/orders/billing`);
    await expectText('[data-testid=group-lag-value]', '2');
    await expectText('[data-testid=group-dead-lettered-value]', '1');

    // Redrive from the dashboard: the dead letter goes back to orders (offset 5), none waits.
    await page.goto(`${base}/#/dead-letters`);
    await expectText('[data-testid=dead-letter-row][data-key="orders.dlq"] [data-col=waiting]', '1');
    await page.click('[data-testid=dead-letter-row][data-key="orders.dlq"] [data-testid=redrive]');
    await expectText('[data-testid=dead-letter-row][data-key="orders.dlq"] [data-col=waiting]', '0');
    await eventually(() => broker.describeTopic('orders').partitions[0]!.nextOffset === 6);
    const [back] = (await (await fetch(`${base}/api/topics/orders/messages?offset=5`)).json()).messages;
    assert.equal(back.value.data, 'order-1');
    await eventually(() => deliveries.some((delivery) => delivery.offset === 5 && delivery.value.toString() === 'order-1'));

    assert.deepEqual(pageErrors, []);
    await subscription.close();
  } finally {
    await browser.close();
    await client.close();
    await tcp.close();
    await admin.close();
    await broker.close();
  }
});
