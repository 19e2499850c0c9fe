/**
 * Formatting the status bar, the budget panel and the badges show. Pure.
 */

import type { IConfidenceInterval, IDatasetBudget, IMaskNote } from './types';

/** The Greek letter for a measure: ρ for zCDP, ε for pure DP. */
export function measureSymbol(measure: string): string {
  switch (measure) {
    case 'rho':
      return 'ρ';
    case 'epsilon':
      return 'ε';
    default:
      return measure;
  }
}

/**
 * A decimal string as shown: exact digits (no float round trip), without a
 * trailing fractional zero ("0.3750" → "0.375", "2.000" → "2").
 * Anything that is not a plain decimal is shown as it came.
 */
export function formatAmount(amount: string | null | undefined): string {
  if (amount === null || amount === undefined) {
    return '—';
  }
  const text = String(amount).trim();
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!m) {
    return text;
  }
  const [, sign, whole, frac = ''] = m;
  const intPart = whole.replace(/^0+(?=\d)/, '');
  const fracPart = frac.replace(/0+$/, '');
  const out = fracPart ? `${intPart}.${fracPart}` : intPart;
  return out === '0' ? '0' : sign + out;
}

/** "ρ 0.375" */
export function formatMeasured(measure: string, amount: string | null | undefined): string {
  return `${measureSymbol(measure)} ${formatAmount(amount)}`;
}

/**
 * Spent as a fraction of the budget, clamped to [0, 1], for drawing only
 * (the numbers shown are the exact strings).
 */
export function spentFraction(spent: string, budget: string): number {
  const s = Number(spent);
  const b = Number(budget);
  if (!Number.isFinite(s) || !Number.isFinite(b) || b <= 0) {
    return s > 0 ? 1 : 0;
  }
  return Math.min(1, Math.max(0, s / b));
}

/**
 * Seconds left of the second factor's freshness, as m:ss ("04:05"); minutes
 * are not capped at 59. `null` once it has run out (the caller says
 * "step-up needed").
 */
export function formatCountdown(secondsLeft: number): string | null {
  if (!Number.isFinite(secondsLeft) || secondsLeft <= 0) {
    return null;
  }
  const total = Math.floor(secondsLeft);
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

/** The MFA part of the status bar for a `freshUntil` (Unix s) at `nowMs`. */
export function mfaStatus(
  freshUntil: number | null | undefined,
  nowMs: number
): { text: string; fresh: boolean } {
  if (freshUntil === null || freshUntil === undefined) {
    return { text: 'MFA: step-up needed', fresh: false };
  }
  const left = formatCountdown(freshUntil - nowMs / 1000);
  return left === null
    ? { text: 'MFA: step-up needed', fresh: false }
    : { text: `MFA ${left}`, fresh: true };
}

/**
 * The dataset "in use": the one with the most recent charge, else the first
 * granted one, else none.
 */
export function datasetInUse(datasets: IDatasetBudget[]): IDatasetBudget | null {
  let best: IDatasetBudget | null = null;
  let bestTime = -Infinity;
  for (const ds of datasets) {
    const latest = ds.recent && ds.recent.length ? Date.parse(ds.recent[0].time) : NaN;
    if (Number.isFinite(latest) && latest > bestTime) {
      best = ds;
      bestTime = latest;
    }
  }
  return best ?? datasets[0] ?? null;
}

/** "95% CI [41.2, 43.9]", or "—" when the release has no interval. */
export function formatCI(ci: IConfidenceInterval | null | undefined): string {
  if (!ci) {
    return '—';
  }
  const level = Math.round(ci.level * 1000) / 10;
  const num = (x: number) => (Number.isFinite(x) ? String(Math.round(x * 1e4) / 1e4) : String(x));
  return `${level}% CI [${num(ci.low)}, ${num(ci.high)}]`;
}

/** A time for tables: "2026-11-27 10:00:05" in the browser's zone; the raw text if unparsable. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) {
    return iso;
  }
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  );
}

const BY_TEXT: Record<string, string> = {
  kernel: 'by the kernel',
  server: 'by the server',
  save: 'when the notebook was saved'
};

/** The mask note of an output's metadata, if it says the output was masked. */
export function maskNoteOf(metadata: unknown): IMaskNote | null {
  if (metadata === null || typeof metadata !== 'object') {
    return null;
  }
  const note = (metadata as Record<string, unknown>)['jupyter_secure'];
  if (note === null || typeof note !== 'object') {
    return null;
  }
  const rec = note as Record<string, unknown>;
  return rec.masked === true ? (rec as unknown as IMaskNote) : null;
}

/**
 * One note for a printed output made of several masked stream messages (JupyterLab
 * appends consecutive prints to one output): entity counts add up, the latest
 * message's role and origin stand, and a failure anywhere stays a failure.
 */
export function mergeMaskNotes(before: IMaskNote | null | undefined, next: IMaskNote): IMaskNote {
  if (!before) {
    return { ...next, entities: { ...(next.entities ?? {}) } };
  }
  const entities: Record<string, number> = { ...(before.entities ?? {}) };
  for (const [name, n] of Object.entries(next.entities ?? {})) {
    if (typeof n === 'number') {
      entities[name] = (entities[name] ?? 0) + n;
    }
  }
  const merged: IMaskNote = { ...next, masked: true, entities };
  if (before.failed || next.failed) {
    merged.failed = true;
  }
  return merged;
}

/** Entities, most frequent first: "3 × EMAIL_ADDRESS, 2 × PERSON". */
export function formatEntities(entities: Record<string, number> | undefined): string {
  if (!entities) {
    return '';
  }
  return Object.entries(entities)
    .filter(([, n]) => typeof n === 'number' && n > 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([name, n]) => `${n} × ${name}`)
    .join(', ');
}

/**
 * The badge's hover text:
 * "Masked for role student by the kernel: 3 × EMAIL_ADDRESS, 2 × PERSON".
 */
export function badgeReason(note: IMaskNote): string {
  const role = note.role ? ` for role ${note.role}` : '';
  const by = note.by ? ` ${BY_TEXT[note.by] ?? `by ${note.by}`}` : '';
  const entities = formatEntities(note.entities);
  if (note.failed) {
    return (
      `Withheld${role}${by}: masking failed, so the output was not shown` +
      (entities ? ` (also masked: ${entities})` : '')
    );
  }
  return `Masked${role}${by}` + (entities ? `: ${entities}` : '');
}

/** The badge's visible label. */
export function badgeLabel(note: IMaskNote): string {
  return note.failed ? 'withheld' : 'PII masked';
}

/**
 * The handshake's verdict on the server's version: null when they match,
 * else a sentence naming both.
 */
export function versionMismatch(
  extensionVersion: string,
  serverVersion: string | null | undefined
): string | null {
  if (!serverVersion) {
    return (
      `the jupyter-secure server extension did not report its version; ` +
      `this JupyterLab extension is ${extensionVersion}. Install the same version of both.`
    );
  }
  if (serverVersion === extensionVersion) {
    return null;
  }
  return (
    `the jupyter-secure server extension is version ${serverVersion} but this ` +
    `JupyterLab extension is version ${extensionVersion}. Install the same version of both.`
  );
}

/** Which admin tabs `/me` scopes allow, in display order. */
export type AdminTab = 'users' | 'budgets' | 'alarms' | 'audit' | 'review';

export const ADMIN_SCOPES = [
  'secure:users:admin',
  'secure:budgets:admin',
  'secure:audit:read',
  'secure:audit:admin',
  'secure:alarms:read'
];

export function adminTabs(scopes: readonly string[]): AdminTab[] {
  const has = (s: string) => scopes.includes(s);
  const tabs: AdminTab[] = [];
  if (has('secure:users:admin')) {
    tabs.push('users');
  }
  if (has('secure:budgets:admin')) {
    tabs.push('budgets');
  }
  if (has('secure:alarms:read')) {
    tabs.push('alarms');
  }
  if (has('secure:audit:read') || has('secure:audit:admin')) {
    tabs.push('audit');
  }
  if (has('secure:users:admin')) {
    tabs.push('review');
  }
  return tabs;
}
