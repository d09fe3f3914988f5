/**
 * deploy/grafana/ferry.json queries only metrics that /metrics serves (a renamed metric must not
 * silently empty a panel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startAdmin } from './harness.js';
import { parsePrometheus } from './prometheus.js';

const DASHBOARD = fileURLToPath(new URL('../../deploy/grafana/ferry.json', import.meta.url));
const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;

test('grafana - every metric the dashboard queries is served by /metrics', async () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  const expressions: string[] = [
    ...dashboard.panels.flatMap((panel: any) => (panel.targets ?? []).map((target: any) => target.expr)),
    ...dashboard.templating.list.map((variable: any) => variable.definition ?? ''),
  ];
  const used = new Set(expressions.flatMap((expr) => expr.match(/\bferry_[a-z0-9_]+/g) ?? []));
  assert.ok(used.size >= 25, `the dashboard uses ${used.size} metrics`);
  const fixture = await startAdmin();
  try {
    const families = parsePrometheus(await (await fetch(`${fixture.base}/metrics`)).text());
    for (const name of used) {
      const family = families.get(name) ?? families.get(name.replace(HISTOGRAM_SUFFIX, ''));
      assert.ok(family !== undefined, `the dashboard queries ${name}, which /metrics does not serve`);
    }
  } finally {
    await fixture.close();
  }
  const ids = dashboard.panels.map((panel: any) => panel.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  assert.equal(dashboard.uid, 'ferry-broker');
});
