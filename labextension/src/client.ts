/**
 * The typed client for `/secure/api` (docs/rest-api.md). Every call goes
 * through ServerConnection.makeRequest, so the session cookie and the
 * X-XSRFToken header go with it; every answer is read by
 * core/errors.interpretResponse, the one place errors are mapped.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { SecureApiError, interpretResponse } from './core/errors';
import type {
  BudgetAction,
  IAccessReview,
  IAdminDataset,
  IAdminUser,
  IAlarm,
  IAlarmsReply,
  IAuditQuery,
  IAuditReply,
  IBudgetsReply,
  IMe,
  IReauthReply,
  IVerifyReply,
  UserAction
} from './core/types';

type Query = Record<string, string | number | undefined | null>;

export class SecureClient {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  /** GET/POST `secure/api/<path>`; resolves the JSON body, rejects with a SecureApiError. */
  async request<T>(path: string, init: RequestInit = {}, query?: Query): Promise<T> {
    let url = URLExt.join(this.settings.baseUrl, 'secure/api', path);
    if (query) {
      const kept: Record<string, string> = {};
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== '') {
          kept[k] = String(v);
        }
      }
      if (Object.keys(kept).length) {
        url += URLExt.objectToQueryString(kept);
      }
    }
    // 'no-cache' makes the browser revalidate every answer, as 'no-store'
    // would, without the `?<timestamp>` cache-buster ServerConnection adds
    // for 'no-store': routes that take no parameters refuse unknown ones.
    const withCache: RequestInit = { cache: 'no-cache', ...init };
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, withCache, this.settings);
    } catch (err) {
      throw new SecureApiError('network', err instanceof Error ? err.message : String(err), 0);
    }
    const text = await response.text();
    return interpretResponse<T>(response.status, text, response.headers.get('Retry-After'));
  }

  private post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>(path, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' }
    });
  }

  me(): Promise<IMe> {
    return this.request<IMe>('me');
  }

  reauth(otp: string): Promise<IReauthReply> {
    return this.post<IReauthReply>('reauth', { otp });
  }

  budgets(): Promise<IBudgetsReply> {
    return this.request<IBudgetsReply>('budgets');
  }

  async users(): Promise<IAdminUser[]> {
    return (await this.request<{ users: IAdminUser[] }>('admin/users')).users;
  }

  userAction(name: string, action: UserAction, reason?: string): Promise<IAdminUser> {
    return this.post<IAdminUser>(
      `admin/users/${encodeURIComponent(name)}/${action}`,
      reason ? { reason } : {}
    );
  }

  async adminBudgets(): Promise<IAdminDataset[]> {
    return (await this.request<{ datasets: IAdminDataset[] }>('admin/budgets')).datasets;
  }

  budgetAction(body: BudgetAction): Promise<IAdminDataset> {
    return this.post<IAdminDataset>('admin/budgets', body);
  }

  audit(query: IAuditQuery = {}): Promise<IAuditReply> {
    return this.request<IAuditReply>('audit', {}, { ...query });
  }

  auditVerify(): Promise<IVerifyReply> {
    return this.request<IVerifyReply>('audit/verify');
  }

  accessReview(): Promise<IAccessReview> {
    return this.request<IAccessReview>('admin/access-review');
  }

  alarms(query: { state?: string; since?: string; limit?: number } = {}): Promise<IAlarmsReply> {
    return this.request<IAlarmsReply>('alarms', {}, query);
  }

  ackAlarm(id: string, note: string): Promise<IAlarm> {
    return this.post<IAlarm>(`alarms/${encodeURIComponent(id)}/ack`, { note });
  }
}
