/**
 * The status bar item (`#jp-secure-status`): who, which roles, how long the
 * second factor stays fresh, and what is left on the dataset in use.
 */

import { Widget } from '@lumino/widgets';

import { datasetInUse, formatMeasured, mfaStatus } from './core/format';
import { h } from './dom';
import type { SecureState } from './state';
import { StepUpCancelled } from './core/stepup';
import { stepUpNow } from './stepup';

export class SecureStatus extends Widget {
  constructor(private readonly state: SecureState) {
    super();
    this.id = 'jp-secure-status';
    this.addClass('jp-secure-status');
    this.node.setAttribute('role', 'status');
    this.node.append(this._user, this._roles, this._mfa, this._budget);
    // A stale second factor can be refreshed from here, before an action needs it.
    const stepUp = () => {
      if (this._mfa.classList.contains('jp-mod-stale') && this.state.me.via !== 'token') {
        stepUpNow(this.state.client, () => void this.state.refresh()).catch(err => {
          if (!(err instanceof StepUpCancelled)) {
            console.warn('jupyter-secure: step-up failed', err);
          }
        });
      }
    };
    this._mfa.addEventListener('click', stepUp);
    this._mfa.addEventListener('keydown', ev => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        stepUp();
      }
    });
    state.changed.connect(this._onChanged, this);
    this._tick = window.setInterval(() => this._renderMfa(), 1000);
    this._render();
  }

  dispose(): void {
    window.clearInterval(this._tick);
    super.dispose();
  }

  protected onUpdateRequest(): void {
    this._render();
  }

  private _onChanged(): void {
    // Render at once (not on the next frame): the item is small and tests
    // read it right after a refresh.
    if (!this.isDisposed) {
      this._render();
    }
  }

  private _render(): void {
    const me = this.state.me;
    this._user.textContent = me.name;
    this._roles.textContent = me.roles.length ? me.roles.join(', ') : 'no role';
    this._renderMfa();
    const budgets = this.state.budgets;
    const ds = budgets ? datasetInUse(budgets.datasets) : null;
    if (!this.state.hasScope('secure:budgets:read') || !budgets) {
      this._budget.hidden = true;
      this._budget.textContent = '';
      this._budget.removeAttribute('data-dataset');
    } else if (!ds) {
      this._budget.hidden = false;
      this._budget.textContent = 'no dataset granted';
      this._budget.removeAttribute('data-dataset');
    } else {
      this._budget.hidden = false;
      this._budget.dataset.dataset = ds.name;
      this._budget.textContent = `${ds.name}: ${formatMeasured(ds.measure, ds.remaining)} left`;
    }
    const groups = me.groups.length ? `; groups: ${me.groups.join(', ')}` : '';
    this.node.title =
      `Signed in as ${me.name} (${me.roles.join(', ') || 'no role'}${groups})` +
      (ds
        ? `. ${ds.name}: spent ${formatMeasured(ds.measure, ds.spent)} of ${formatMeasured(ds.measure, ds.budget)}`
        : '');
  }

  private _renderMfa(): void {
    const me = this.state.me;
    const { text, fresh } = mfaStatus(me.mfa?.freshUntil, Date.now());
    if (this._mfa.textContent !== text) {
      this._mfa.textContent = text;
    }
    if (this._mfa.classList.contains('jp-mod-stale') === fresh) {
      this._mfa.classList.toggle('jp-mod-stale', !fresh);
      if (fresh) {
        this._mfa.removeAttribute('role');
        this._mfa.removeAttribute('tabindex');
        this._mfa.title = 'Sensitive actions need no new code until the count-down ends';
      } else {
        this._mfa.setAttribute('role', 'button');
        this._mfa.tabIndex = 0;
        this._mfa.title = 'Sensitive actions need a fresh second factor: click to enter a code now';
      }
    }
  }

  private _user = h('span', { class: 'jp-secure-status-user' });
  private _roles = h('span', { class: 'jp-secure-status-roles' });
  private _mfa = h('span', { class: 'jp-secure-status-mfa' });
  private _budget = h('span', { class: 'jp-secure-status-budget' });
  private _tick: number;
}
