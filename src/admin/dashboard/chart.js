// A small SVG time-series chart: lines with a soft area, a nice y scale with grid lines, and a
// time axis. Redrawn on every sample (a few hundred points at most), sized to its container.
import { fmtCompact, h, svg } from './lib.js';

const PADDING = { top: 10, right: 12, bottom: 22, left: 66 };
/** The time axis grows with the history, from half a minute to its full two minutes. */
const WINDOW_MS_MIN = 30_000;
const WINDOW_MS_MAX = 120_000;
const TICK_STEPS_S = [5, 10, 15, 30, 60];
const TICKS_MAX = 6;
const GRID_LINES = 4;
/** The finest decimal step: fmtCompact shows two decimals, so a finer one would repeat a label. */
const DECIMAL_STEP_MIN = 0.01;

/** Decimal steps: 1, 2 or 5 × 10^n. */
function decimalStep(value) {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/** Binary steps: a power of two bytes (512 B, 1 KiB, 2 KiB ...), never under one byte. */
function binaryStep(value) {
  return 2 ** Math.max(0, Math.ceil(Math.log2(value)));
}

/**
 * The y axis: GRID_LINES + 1 values from 0, a round step apart, the top at or above `peak`. Steps
 * are 1, 2 or 5 × 10^n (a power of two for bytes, whole bytes at least), so every label is round
 * and no two labels read the same, even on an idle chart (peak 0: 0, 1, 2, 3, 4).
 */
export function axisTicks(peak, options = {}) {
  const wanted = Math.max(peak, 0) / GRID_LINES;
  const step = options.binary ? binaryStep(Math.max(wanted, 1)) : decimalStep(wanted > 0 ? Math.max(wanted, DECIMAL_STEP_MIN) : 1);
  return Array.from({ length: GRID_LINES + 1 }, (_, i) => {
    const value = step * i;
    // 3 × 0.1 is 0.30000000000000004: round to the step's own precision.
    return Number(value.toPrecision(12));
  });
}

/**
 * series: [{ name, color, points: [{ t (ms), v }] }]; options: { windowMs, format, height }.
 * Returns { element, legend }.
 */
export function lineChart(container, series, options = {}) {
  const width = Math.max(240, container.clientWidth || 600);
  const height = options.height ?? 190;
  const format = options.format ?? fmtCompact;
  const now = Math.max(...series.flatMap((s) => s.points.map((p) => p.t)), Date.now());
  const oldest = Math.min(now, ...series.flatMap((s) => s.points.map((p) => p.t)));
  const windowMs = options.windowMs ?? Math.min(WINDOW_MS_MAX, Math.max(WINDOW_MS_MIN, now - oldest));
  const start = now - windowMs;
  const peak = Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.v))) * 1.1;
  // Byte scales step in powers of two so that grid lines land on round KiB/MiB values.
  const ticks = axisTicks(peak, { binary: options.binary === true });
  const max = ticks[ticks.length - 1];
  const plotW = width - PADDING.left - PADDING.right;
  const plotH = height - PADDING.top - PADDING.bottom;
  const x = (t) => PADDING.left + ((t - start) / windowMs) * plotW;
  const y = (v) => PADDING.top + plotH - (v / max) * plotH;

  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': options.label ?? 'chart' });
  const defs = svg('defs');
  root.append(defs);
  for (const value of ticks) {
    root.append(svg('line', { class: 'grid-line', x1: PADDING.left, x2: width - PADDING.right, y1: y(value), y2: y(value) }));
    root.append(svg('text', { class: 'axis-label', x: PADDING.left - 8, y: y(value) + 4, 'text-anchor': 'end' }, format(value)));
  }
  const stepS = TICK_STEPS_S.find((step) => windowMs / 1000 / step <= TICKS_MAX) ?? TICK_STEPS_S.at(-1);
  for (let secondsAgo = Math.floor(windowMs / 1000 / stepS) * stepS; secondsAgo >= 0; secondsAgo -= stepS) {
    const t = now - secondsAgo * 1000;
    const label = secondsAgo === 0 ? 'now' : `-${secondsAgo}s`;
    root.append(svg('text', { class: 'axis-label', x: x(t), y: height - 6, 'text-anchor': secondsAgo === 0 ? 'end' : t - start < 2000 ? 'start' : 'middle' }, label));
  }
  series.forEach((s, index) => {
    const points = s.points.filter((p) => p.t >= start);
    if (points.length < 2) return;
    const gradientId = `g${index}-${Math.random().toString(36).slice(2, 8)}`;
    defs.append(
      svg(
        'linearGradient',
        { id: gradientId, x1: 0, x2: 0, y1: 0, y2: 1 },
        svg('stop', { offset: '0%', 'stop-color': s.color, 'stop-opacity': 0.22 }),
        svg('stop', { offset: '100%', 'stop-color': s.color, 'stop-opacity': 0.02 }),
      ),
    );
    const line = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
    const area = `${line}L${x(points[points.length - 1].t).toFixed(1)},${y(0)}L${x(points[0].t).toFixed(1)},${y(0)}Z`;
    root.append(svg('path', { d: area, fill: `url(#${gradientId})`, stroke: 'none' }));
    root.append(svg('path', { d: line, fill: 'none', stroke: s.color, 'stroke-width': 2, 'stroke-linejoin': 'round', 'stroke-linecap': 'round' }));
  });
  container.replaceChildren(root);
}

/** "● In 1.2k/s  ● Out 1.1k/s" */
export function legend(series, format = fmtCompact, unit = '') {
  return h(
    'div',
    { class: 'legend' },
    series.map((s) => {
      const last = s.points[s.points.length - 1];
      return h('span', { 'data-testid': s.testid }, h('i', { style: `background:${s.color}` }), `${s.name} `, h('b', null, last === undefined ? '–' : format(last.v) + unit));
    }),
  );
}
