/**
 * The shapes of the `/secure/api` answers (docs/rest-api.md), as far as the
 * extension reads them. Amounts are decimal strings, times ISO 8601 strings,
 * `freshUntil`/`expiresAt` Unix seconds.
 */

export interface IMe {
  name: string;
  roles: string[];
  groups: string[];
  scopes: string[];
  kernelspecs?: string[];
  via?: 'session' | 'token' | string;
  mfa?: { at: string | null; fresh: boolean; freshUntil: number | null };
  policy?: string;
  version?: string;
  session?: { idleTimeoutSeconds?: number; expiresAt?: number };
}

export interface IReauthReply {
  ok: boolean;
  maxAgeSeconds: number;
}

export interface IHistoryPoint {
  time: string;
  spent: string;
}

export interface IConfidenceInterval {
  level: number;
  low: number;
  high: number;
}

export interface IRecentCharge {
  id: number;
  time: string;
  cost: string;
  status: string;
  query: string;
  ci: IConfidenceInterval | null;
}

export interface IDatasetBudget {
  name: string;
  description?: string;
  measure: string;
  budget: string;
  spent: string;
  remaining: string;
  history: IHistoryPoint[];
  recent: IRecentCharge[];
}

export interface IBudgetsReply {
  datasets: IDatasetBudget[];
}

export interface IAdminUser {
  name: string;
  roles: string[];
  groups: string[];
  disabled: boolean;
  locked: boolean;
  lockedUntil: string | null;
  mfaEnrolled: boolean;
  lastSignIn: string | null;
  createdAt: string;
  service: boolean;
}

export type UserAction = 'lock' | 'unlock' | 'disable' | 'enable' | 'mfa-reset';

export interface IGrant {
  kind: 'group' | 'user';
  principal: string;
  budget: string;
}

export interface IUserBudget {
  user: string;
  /** null: an instructor's group member without a grant. */
  budget: string | null;
  spent: string;
  remaining: string | null;
}

export interface IAdminDataset {
  name: string;
  description?: string;
  measure: string;
  perUserBudget: string | null;
  cap: string | null;
  capSpent: string | null;
  grants: IGrant[];
  users: IUserBudget[];
}

export type BudgetAction =
  | { action: 'grant'; dataset: string; group: string; budget?: string }
  | { action: 'grant'; dataset: string; user: string; budget?: string }
  | { action: 'set'; dataset: string; user: string; budget: string }
  | { action: 'reset'; dataset: string; user: string };

export interface IAuditRecord {
  seq: number;
  time: string;
  event: string;
  user: string | null;
  roles?: string[];
  sourceIp?: string | null;
  errorCode?: string | null;
  resources?: { type: string; name: string }[];
  request?: unknown;
  response?: unknown;
}

export interface IAuditReply {
  records: IAuditRecord[];
  next: number | null;
}

export interface IAuditQuery {
  user?: string;
  event?: string;
  since?: string;
  until?: string;
  limit?: number;
  before?: number;
}

export interface IVerifyProblem {
  kind: string;
  where: string;
  detail: string;
}

export interface IVerifyReply {
  ok: boolean;
  records: number;
  checkpoints: number;
  lastCheckpoint: string | null;
  problems: IVerifyProblem[];
  notices?: string[];
  checkedAt: string;
}

export interface IAccessReviewRow {
  user: string;
  status?: string;
  roles: string[];
  groups: string[];
  lastSignIn: string | null;
  findings: string[];
}

export interface IAccessReview {
  summary: Record<string, number>;
  rows: IAccessReviewRow[];
}

export interface IAlarm {
  id: string;
  rule: string;
  key: string;
  severity: string;
  state: string;
  reason: string;
  value: number | null;
  threshold: number | null;
  raisedAt: string | null;
  resolvedAt: string | null;
  ackedBy: string | null;
  ackedAt: string | null;
  ackNote: string | null;
}

export interface IAlarmsReply {
  alarms: IAlarm[];
  firing: unknown;
}

/** The output metadata the guard sets on masked display_data/execute_result. */
export interface IMaskNote {
  masked: boolean;
  role?: string | null;
  entities?: Record<string, number>;
  by?: 'kernel' | 'server' | 'save' | string;
  failed?: boolean;
}
