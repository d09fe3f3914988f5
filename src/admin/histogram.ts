/**
 * A histogram with one label for the per-message hot path (end-to-end latency is observed once per
 * delivery). prom-client's Histogram builds a label object, validates it and hashes it into a string
 * key on every observe(), about a microsecond each; here a series is an array of bucket counts
 * looked up once per topic, so an observation is a bucket search and three additions. The registry
 * renders it like any prom-client histogram (`_bucket{le}`, `_sum`, `_count`, cumulative buckets).
 */
import assert from 'node:assert/strict';
import type { Registry } from 'prom-client';

/** One line of the rendered metric, as prom-client's registry reads it. */
interface RenderedValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** What prom-client's registry reads from a registered metric's get(). */
export interface RenderedMetric {
  name: string;
  help: string;
  type: 'histogram';
  values: RenderedValue[];
  aggregator: 'sum';
}

export interface HistogramSeries {
  observe(value: number): void;
}

interface SeriesCounts extends HistogramSeries {
  readonly labelValue: string;
  /** Non-cumulative counts per bucket; the last slot is +Inf. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

export class LabelledHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, SeriesCounts>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    for (let i = 1; i < upperBounds.length; i++) assert.ok(upperBounds[i - 1]! < upperBounds[i]!, 'bucket bounds increase');
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series for one label value; keep it and observe on it (the lookup is the costly part). */
  labels(labelValue: string): HistogramSeries {
    let series = this.series.get(labelValue);
    if (series === undefined) {
      const bounds = this.upperBounds;
      const buckets = new Float64Array(bounds.length + 1);
      const created: SeriesCounts = {
        labelValue,
        buckets,
        sum: 0,
        count: 0,
        observe(value: number): void {
          if (!Number.isFinite(value)) return;
          let bucket = 0;
          while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
          buckets[bucket]! += 1;
          created.sum += value;
          created.count += 1;
        },
      };
      series = created;
      this.series.set(labelValue, series);
    }
    return series;
  }

  /** What the registry renders: cumulative buckets with `le`, then sum and count, per series. */
  get(): RenderedMetric {
    const values: RenderedValue[] = [];
    for (const series of this.series.values()) {
      const labels = { [this.labelName]: series.labelValue };
      let cumulative = 0;
      for (let i = 0; i <= this.upperBounds.length; i++) {
        cumulative += series.buckets[i]!;
        const le = i < this.upperBounds.length ? this.upperBounds[i]! : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: series.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}
