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

/** The smallest "nice" number (1, 2, 2.5, 5 × 10^n) at or above value. */
function niceCeil(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
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
  // Byte scales step in binary units so that grid lines land on round KiB/MiB values.
  const unit = options.binary && peak > 0 ? 1024 ** Math.max(0, Math.floor(Math.log(peak) / Math.log(1024))) : 1;
  const max = niceCeil(peak / unit) * unit;
  const plotW = width - PADDING.left - PADDING.right;
  const plotH = height - PADDING.top - PADDING.bottom;
  const x = (t) => PADDING.left + ((t - start) / windowMs) * plotW;
  const y = (v) => PADDING.top + plotH - (v / max) * plotH;

  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': options.label ?? 'chart' });
  const defs = svg('defs');
  root.append(defs);
  for (let i = 0; i <= GRID_LINES; i++) {
    const value = (max / GRID_LINES) * i;
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
