/**
 * What the status bar and the budget panel show: `/me` and the caller's
 * budgets, refreshed every 30 s and whenever a cell finishes executing.
 */

import { ISignal, Signal } from '@lumino/signaling';

import type { SecureClient } from './client';
import type { SecureApiError } from './core/errors';
import { isSecureApiError } from './core/errors';
import type { IBudgetsReply, IMe } from './core/types';

export const REFRESH_MS = 30_000;

export class SecureState {
  constructor(
    readonly client: SecureClient,
    me: IMe
  ) {
    this._me = me;
  }

  get me(): IMe {
    return this._me;
  }

  get budgets(): IBudgetsReply | null {
    return this._budgets;
  }

  /** Why the budgets could not be read, if they could not. */
  get budgetsError(): SecureApiError | Error | null {
    return this._budgetsError;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  hasScope(scope: string): boolean {
    return this._me.scopes.includes(scope);
  }

  /**
   * Re-read /me and (with the scope) the budgets; concurrent calls share one round.
   *
   * `me: false` reads only the budgets: for the first round, right after the
   * handshake has read /me (reading it again was one request per page load
   * for nothing).
   */
  refresh(options: { me?: boolean } = {}): Promise<void> {
    const me = options.me ?? true;
    if (this._pending) {
      this._again = true;
      this._againMe = this._againMe || me;
      return this._pending;
    }
    this._pending = this._refresh(me).finally(() => {
      this._pending = null;
      if (this._again) {
        const again = { me: this._againMe };
        this._again = false;
        this._againMe = false;
        void this.refresh(again);
      }
    });
    return this._pending;
  }

  /** Refresh every 30 s from now on. */
  start(): void {
    if (this._timer === null) {
      this._timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
    }
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
    Signal.clearData(this);
  }

  private async _refresh(readMe: boolean): Promise<void> {
    const [me, budgets] = await Promise.allSettled([
      readMe ? this.client.me() : Promise.resolve(this._me),
      this.hasScope('secure:budgets:read') ? this.client.budgets() : Promise.resolve(null)
    ]);
    if (me.status === 'fulfilled') {
      this._me = me.value;
    }
    if (budgets.status === 'fulfilled') {
      this._budgets = budgets.value;
      this._budgetsError = null;
    } else {
      const err = budgets.reason;
      this._budgetsError =
        isSecureApiError(err) || err instanceof Error ? err : new Error(String(err));
      // 503 (private queries off) and 403 mean there is nothing to show; a
      // network blip keeps the last numbers.
      if (isSecureApiError(err) && err.kind !== 'network') {
        this._budgets = null;
      }
    }
    this._changed.emit();
  }

  private _me: IMe;
  private _budgets: IBudgetsReply | null = null;
  private _budgetsError: SecureApiError | Error | null = null;
  private _changed = new Signal<this, void>(this);
  private _pending: Promise<void> | null = null;
  private _again = false;
  private _againMe = false;
  private _timer: number | null = null;
}
