import { historyChart } from '../src/core/chart';

const opts = { width: 108, height: 58, budget: 0.5, padding: 4 };

describe('history → SVG path', () => {
  it('draws nothing without history', () => {
    const c = historyChart([], opts);
    expect(c.path).toBe('');
    expect(c.points).toEqual([]);
    expect(c.budgetY).toBe(4);
  });

  it('is a step line from zero, oldest first, up to each cumulative spend', () => {
    const c = historyChart(
      [
        { time: '2026-11-27T10:10:00Z', spent: '0.25' },
        { time: '2026-11-27T10:00:00Z', spent: '0.125' }
      ],
      opts
    );
    // x: 4..104 over 10 minutes; y: 54 (0) .. 4 (0.5)
    expect(c.points.map(p => [p.x, p.y])).toEqual([
      [4, 41.5],
      [104, 29]
    ]);
    expect(c.path).toBe('M4 54 H4 V41.5 H104 V29');
    expect(c.budgetY).toBe(4);
  });

  it('extends the last level to now', () => {
    const c = historyChart(
      [
        { time: '2026-11-27T10:00:00Z', spent: '0.1' },
        { time: '2026-11-27T10:05:00Z', spent: '0.2' }
      ],
      { ...opts, now: Date.parse('2026-11-27T10:10:00Z') }
    );
    expect(c.path).toBe('M4 54 H4 V44 H54 V34 H104');
  });

  it('draws a single charge in the middle and across', () => {
    const c = historyChart([{ time: '2026-11-27T10:00:00Z', spent: '0.5' }], opts);
    expect(c.path).toBe('M54 54 H54 V4 H104');
  });

  it('raises the axis when the spend passed the budget, and skips junk', () => {
    const c = historyChart(
      [
        { time: 'not a time', spent: '0.1' },
        { time: '2026-11-27T10:00:00Z', spent: 'NaN-ish' },
        { time: '2026-11-27T10:00:00Z', spent: '1' },
        { time: '2026-11-27T11:00:00Z', spent: '1' }
      ],
      opts
    );
    expect(c.yMax).toBe(1);
    expect(c.budgetY).toBe(29);
    expect(c.path).toBe('M4 54 H4 V4 H104');
  });

  it('stays in the box for any input', () => {
    const history = Array.from({ length: 500 }, (_, i) => ({
      time: new Date(Date.UTC(2026, 10, 1) + i * 37_000).toISOString(),
      spent: String((i * 0.001).toFixed(3))
    }));
    const c = historyChart(history, opts);
    for (const p of c.points) {
      expect(p.x).toBeGreaterThanOrEqual(4);
      expect(p.x).toBeLessThanOrEqual(104);
      expect(p.y).toBeGreaterThanOrEqual(4);
      expect(p.y).toBeLessThanOrEqual(54);
    }
    expect(c.path.startsWith('M4 54')).toBe(true);
  });
});
