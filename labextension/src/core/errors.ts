/**
 * One place that turns an HTTP answer from `/secure/api` into an error the
 * UI can act on. Pure: no JupyterLab imports, so jest tests it directly.
 */

export type SecureErrorKind =
  /** The route does not exist: the server extension is off (or too old). */
  | 'not-enabled'
  /** A sensitive action needs a fresh second factor (403 "step-up required"). */
  | 'step-up'
  /** 401: not signed in, or (from /reauth) a wrong code. */
  | 'unauthenticated'
  /** 403 for any other reason: the caller lacks the scope. */
  | 'forbidden'
  /** 404 with a JSON error: an object (user, alarm) that does not exist. */
  | 'not-found'
  /** 400: bad input; `field` names it when the server said. */
  | 'invalid'
  /** 429: throttled; `retryAfter` in seconds when the server said. */
  | 'throttled'
  /** 503: the feature is off on this server (private queries, the monitor). */
  | 'unavailable'
  /** Any other 5xx, or an answer that is not the JSON we expected. */
  | 'server'
  /** The request never got an answer. */
  | 'network';

export const STEP_UP_REQUIRED = 'step-up required';

export class SecureApiError extends Error {
  readonly kind: SecureErrorKind;
  readonly status: number;
  readonly field?: string;
  readonly retryAfter?: number;
  readonly maxAgeSeconds?: number;

  constructor(
    kind: SecureErrorKind,
    message: string,
    status: number,
    extra: { field?: string; retryAfter?: number; maxAgeSeconds?: number } = {}
  ) {
    super(message);
    this.name = 'SecureApiError';
    this.kind = kind;
    this.status = status;
    this.field = extra.field;
    this.retryAfter = extra.retryAfter;
    this.maxAgeSeconds = extra.maxAgeSeconds;
    Object.setPrototypeOf(this, SecureApiError.prototype);
  }
}

export function isSecureApiError(err: unknown, kind?: SecureErrorKind): err is SecureApiError {
  return err instanceof SecureApiError && (kind === undefined || err.kind === kind);
}

function asRecord(body: unknown): Record<string, unknown> | null {
  return body !== null && typeof body === 'object' && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : null;
}

/** Parse a body that may or may not be JSON (tornado's 404 page is HTML). */
export function parseBody(text: string): unknown {
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The `Retry-After` header as whole seconds, when it is a number. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || value.trim() === '') {
    return undefined;
  }
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? Math.ceil(n) : undefined;
}

/**
 * Map a non-2xx answer to a SecureApiError.
 *
 * `{"error": …}` is this server's own shape; `{"message"|"reason": …}` is
 * jupyter_server's for errors raised as HTTPError; anything else (an HTML
 * page) means no handler of ours answered.
 */
export function mapHttpError(
  status: number,
  body: unknown,
  retryAfterHeader?: string | null
): SecureApiError {
  const rec = asRecord(body);
  const ours = rec !== null && typeof rec.error === 'string';
  const text =
    (ours && (rec!.error as string)) ||
    (rec && typeof rec.message === 'string' && rec.message) ||
    (rec && typeof rec.reason === 'string' && rec.reason) ||
    `HTTP ${status}`;
  const field = rec && typeof rec.field === 'string' ? rec.field : undefined;
  const retryAfter = parseRetryAfter(retryAfterHeader);
  if (status === 403 && ours && rec!.error === STEP_UP_REQUIRED) {
    const maxAge = typeof rec!.maxAgeSeconds === 'number' ? rec!.maxAgeSeconds : undefined;
    return new SecureApiError('step-up', 'A fresh second factor is needed', status, {
      maxAgeSeconds: maxAge
    });
  }
  switch (status) {
    case 400:
    case 422:
      return new SecureApiError('invalid', text, status, { field });
    case 401:
      return new SecureApiError('unauthenticated', text, status);
    case 403:
      return new SecureApiError('forbidden', text, status);
    case 404:
      return ours
        ? new SecureApiError('not-found', text, status, { field })
        : new SecureApiError(
            'not-enabled',
            'the jupyter-secure server extension is not enabled on this server',
            status
          );
    case 429:
      return new SecureApiError(
        'throttled',
        retryAfter !== undefined ? `${text} (try again in ${retryAfter} s)` : text,
        status,
        { retryAfter }
      );
    case 503:
      return new SecureApiError('unavailable', text, status);
    default:
      return new SecureApiError(
        status >= 400 && status < 500 ? 'invalid' : 'server',
        text,
        status,
        { field }
      );
  }
}

/** A short sentence for a notification or an error line. */
export function describeError(err: unknown): string {
  if (isSecureApiError(err)) {
    switch (err.kind) {
      case 'network':
        return `The server did not answer: ${err.message}`;
      case 'forbidden':
        return `Not allowed: ${err.message}`;
      case 'invalid':
        return err.field ? `${err.message} (${err.field})` : err.message;
      default:
        return err.message;
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The value of an answer: its JSON body when 2xx (null for 204), else the
 * mapped error. The client's only way to read a response.
 */
export function interpretResponse<T>(
  status: number,
  text: string,
  retryAfterHeader?: string | null
): T {
  const body = parseBody(text);
  if (status < 200 || status >= 300) {
    throw mapHttpError(status, body, retryAfterHeader);
  }
  if (status === 204 || text === '') {
    return null as T;
  }
  if (body === null || typeof body !== 'object') {
    throw new SecureApiError(
      'server',
      'The server answered with something other than JSON',
      status
    );
  }
  return body as T;
}
