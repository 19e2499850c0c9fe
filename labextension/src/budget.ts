/**
 * The "Privacy budget" side panel (`#jp-secure-budget`): per granted
 * dataset, spent against remaining, cumulative spend over time and the
 * last queries. Shown only to holders of secure:budgets:read.
 */

import { Widget } from '@lumino/widgets';

import { historyChart } from './core/chart';
import { describeError, isSecureApiError } from './core/errors';
import { formatAmount, formatCI, formatTime, measureSymbol, spentFraction } from './core/format';
import type { IDatasetBudget } from './core/types';
import { fill, h, s } from './dom';
import { budgetIcon } from './icons';
import type { SecureState } from './state';

const CHART_W = 240;
const CHART_H = 80;

export class BudgetPanel extends Widget {
  constructor(private readonly state: SecureState) {
    super();
    this.id = 'jp-secure-budget';
    this.addClass('jp-secure-budget');
    this.title.icon = budgetIcon;
    this.title.caption = 'Privacy budget';
    this.node.setAttribute('aria-label', 'Privacy budget');
    this.node.append(
      h(
        'header',
        { class: 'jp-secure-panel-header' },
        h('h2', {}, 'Privacy budget'),
        h(
          'button',
          {
            class: 'jp-mod-styled jp-secure-refresh',
            type: 'button',
            'aria-label': 'Refresh the privacy budget',
            onclick: () => void this.state.refresh()
          },
          'Refresh'
        )
      ),
      this._message,
      this._body,
      this._footer
    );
    state.changed.connect(this._render, this);
    this._render();
  }

  private _render(): void {
    if (this.isDisposed) {
      return;
    }
    const { budgets, budgetsError } = this.state;
    this._message.hidden = true;
    if (budgetsError) {
      this._message.hidden = false;
      this._message.textContent = isSecureApiError(budgetsError, 'unavailable')
        ? 'Private queries are off on this server.'
        : `Could not read your budgets: ${describeError(budgetsError)}`;
    }
    if (!budgets) {
      fill(this._body, budgetsError ? null : h('p', {}, 'Loading…'));
      return;
    }
    if (!budgets.datasets.length) {
      fill(this._body, h('p', { class: 'jp-secure-empty' }, 'No dataset has been granted to you.'));
    } else {
      fill(
        this._body,
        budgets.datasets.map(ds => datasetSection(ds))
      );
    }
    this._footer.textContent = `Updated ${formatTime(new Date().toISOString())}`;
  }

  private _message = h('p', { class: 'jp-secure-error', role: 'alert', hidden: true });
  private _body = h('div', { class: 'jp-secure-budget-body' });
  private _footer = h('p', { class: 'jp-secure-updated' });
}

function datasetSection(ds: IDatasetBudget): HTMLElement {
  const sym = measureSymbol(ds.measure);
  const fraction = spentFraction(ds.spent, ds.budget);
  const pct = Math.round(fraction * 100);
  const headingId = `jp-secure-budget-${ds.name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return h(
    'section',
    { class: 'jp-secure-dataset', 'data-dataset': ds.name, 'aria-labelledby': headingId },
    h('h3', { id: headingId }, ds.name),
    ds.description ? h('p', { class: 'jp-secure-description' }, ds.description) : null,
    h(
      'div',
      {
        class: 'jp-secure-bar' + (fraction >= 1 ? ' jp-mod-exhausted' : ''),
        role: 'progressbar',
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': pct,
        'aria-label': `${ds.name}: ${pct}% of the budget spent`
      },
      h('div', { class: 'jp-secure-bar-spent', style: `width: ${pct}%` })
    ),
    h(
      'p',
      { class: 'jp-secure-amounts' },
      'Spent ',
      h('span', { class: 'jp-secure-spent', 'data-value': ds.spent }, formatAmount(ds.spent)),
      ' of ',
      h('span', { class: 'jp-secure-total', 'data-value': ds.budget }, formatAmount(ds.budget)),
      ` ${sym}; `,
      h(
        'span',
        { class: 'jp-secure-remaining', 'data-value': ds.remaining },
        formatAmount(ds.remaining)
      ),
      ` ${sym} remaining`,
      h(
        'span',
        { class: 'jp-secure-measure' },
        ` (${ds.measure === 'rho' ? 'zCDP' : ds.measure === 'epsilon' ? 'pure DP' : ds.measure})`
      )
    ),
    chart(ds),
    ds.history?.length
      ? h(
          'p',
          { class: 'jp-secure-chart-caption' },
          `Cumulative ${sym} spent since ${formatTime(ds.history[0].time)}; ` +
            `dashed: the budget (${formatAmount(ds.budget)} ${sym}).`
        )
      : null,
    recentTable(ds)
  );
}

function chart(ds: IDatasetBudget): Element {
  const c = historyChart(ds.history ?? [], {
    width: CHART_W,
    height: CHART_H,
    budget: Number(ds.budget),
    now: Date.now(),
    padding: 6
  });
  const sym = measureSymbol(ds.measure);
  const label = ds.history?.length
    ? `Cumulative spend on ${ds.name} over time: ${ds.history.length} charges, ` +
      `now ${formatAmount(ds.spent)} of ${formatAmount(ds.budget)} ${sym}`
    : `No spend on ${ds.name} yet`;
  return s(
    'svg',
    {
      class: 'jp-secure-chart',
      viewBox: `0 0 ${CHART_W} ${CHART_H}`,
      width: '100%',
      preserveAspectRatio: 'none',
      role: 'img',
      'aria-label': label
    },
    s('title', {}, label),
    s('rect', {
      class: 'jp-secure-chart-frame',
      x: 0.5,
      y: 0.5,
      width: CHART_W - 1,
      height: CHART_H - 1
    }),
    s('line', {
      class: 'jp-secure-chart-budget',
      x1: 6,
      x2: CHART_W - 6,
      y1: c.budgetY,
      y2: c.budgetY
    }),
    c.path ? s('path', { class: 'jp-secure-chart-line', d: c.path }) : null,
    c.points.map(p =>
      s(
        'circle',
        { class: 'jp-secure-chart-point', cx: p.x, cy: p.y, r: 2 },
        s('title', {}, `${formatTime(p.time)}: ${formatAmount(p.spent)} ${sym} spent`)
      )
    )
  );
}

function recentTable(ds: IDatasetBudget): HTMLElement {
  if (!ds.recent?.length) {
    return h('p', { class: 'jp-secure-empty' }, 'No queries yet.');
  }
  const sym = measureSymbol(ds.measure);
  // A list rather than a table: the side panel is narrow.
  return h(
    'div',
    { class: 'jp-secure-recent' },
    h('h4', {}, 'Last queries'),
    h(
      'ol',
      { 'aria-label': `Last queries on ${ds.name}, newest first` },
      ds.recent.map(r =>
        h(
          'li',
          { 'data-charge': r.id, 'data-status': r.status },
          h('code', { class: 'jp-secure-query' }, r.query),
          h(
            'span',
            { class: 'jp-secure-charge' },
            h(
              'span',
              { class: 'jp-secure-cost', 'data-value': r.cost },
              `${formatAmount(r.cost)} ${sym}`
            ),
            ` · ${r.status} · ${formatCI(r.ci)} · `,
            h('time', { datetime: r.time }, formatTime(r.time))
          )
        )
      )
    )
  );
}
