/**
 * Cumulative spend over time as an SVG path (a step line: the spend stays
 * flat between charges). Pure; the panel draws the path it returns.
 */

import type { IHistoryPoint } from './types';

export interface IChartOptions {
  width: number;
  height: number;
  /** The budget: the top of the y axis (raised to the largest spend if that is more). */
  budget: number;
  /** Where the line ends on the right (ms since epoch); defaults to the last point. */
  now?: number;
  /** Inner margin, in px. */
  padding?: number;
}

export interface IChart {
  /** The `d` of the spend line; '' when there is nothing to draw. */
  path: string;
  /** The y of the budget line. */
  budgetY: number;
  /** The charges, as drawn (for dots and tooltips). */
  points: { x: number; y: number; time: string; spent: string }[];
  /** The top of the y axis, in the amount's units. */
  yMax: number;
  /** The x range, ms since epoch. */
  start: number;
  end: number;
}

const r = (v: number) => Math.round(v * 100) / 100;

export function historyChart(history: IHistoryPoint[], options: IChartOptions): IChart {
  const pad = options.padding ?? 4;
  const w = Math.max(1, options.width - 2 * pad);
  const h = Math.max(1, options.height - 2 * pad);
  const pts = history
    .map(p => ({ t: Date.parse(p.time), v: Number(p.spent), time: p.time, spent: p.spent }))
    .filter(p => Number.isFinite(p.t) && Number.isFinite(p.v))
    .sort((a, b) => a.t - b.t);
  const maxSpent = pts.reduce((m, p) => Math.max(m, p.v), 0);
  const budget = Number.isFinite(options.budget) && options.budget > 0 ? options.budget : 0;
  const yMax = Math.max(budget, maxSpent) || 1;
  const y = (v: number) => r(pad + h - (Math.max(0, v) / yMax) * h);
  const budgetY = y(budget);
  if (pts.length === 0) {
    return { path: '', budgetY, points: [], yMax, start: NaN, end: NaN };
  }
  const start = pts[0].t;
  const lastT = pts[pts.length - 1].t;
  const end = Math.max(lastT, options.now ?? lastT);
  const span = end - start;
  // One point at one instant: draw it in the middle of a flat span.
  const x = (t: number) => r(span > 0 ? pad + ((t - start) / span) * w : pad + w / 2);
  const points = pts.map(p => ({ x: x(p.t), y: y(p.v), time: p.time, spent: p.spent }));
  const segs: string[] = [`M${x(start)} ${y(0)}`];
  let level = y(0);
  for (const p of points) {
    segs.push(`H${p.x}`);
    if (p.y !== level) {
      segs.push(`V${p.y}`);
      level = p.y;
    }
  }
  const right = r(pad + w);
  if (right !== points[points.length - 1].x) {
    segs.push(`H${right}`);
  }
  return { path: segs.join(' '), budgetY, points, yMax, start, end };
}
