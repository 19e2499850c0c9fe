/**
 * Step-up, as docs/rest-api.md says: a sensitive call answered 403
 * "step-up required" asks for a code, posts it to /secure/api/reauth and
 * retries the call once. Pure: the UI passes the prompt and the reauth call.
 */

import { SecureApiError, isSecureApiError } from './errors';

export interface IStepUpHooks {
  /**
   * Ask for a one-time code. `problem` says why we ask again (a wrong code,
   * throttling); resolve null when the user cancels.
   */
  askCode(problem: string | null): Promise<string | null>;
  /** POST the code to /secure/api/reauth; rejects with a SecureApiError. */
  reauth(code: string): Promise<unknown>;
  /** How many codes to try before giving up (default 5). */
  maxAttempts?: number;
}

export class StepUpCancelled extends Error {
  constructor() {
    super('Step-up cancelled');
    this.name = 'StepUpCancelled';
    Object.setPrototypeOf(this, StepUpCancelled.prototype);
  }
}

export const WRONG_CODE =
  'Wrong code. Try again with the current code from your authenticator app.';

/**
 * Run `call`; if it needs a step-up, get a good code through `hooks` and
 * run it once more. Any other error, and a second "step-up required",
 * propagate.
 */
export async function withStepUp<T>(call: () => Promise<T>, hooks: IStepUpHooks): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!isSecureApiError(err, 'step-up')) {
      throw err;
    }
  }
  const max = hooks.maxAttempts ?? 5;
  let problem: string | null = null;
  for (let attempt = 0; ; attempt++) {
    if (attempt >= max) {
      throw new SecureApiError('unauthenticated', 'Too many wrong codes; step-up abandoned', 401);
    }
    const code = await hooks.askCode(problem);
    if (code === null) {
      throw new StepUpCancelled();
    }
    const trimmed = code.replace(/\s+/g, '');
    if (!trimmed) {
      problem = 'Enter the code from your authenticator app.';
      continue;
    }
    try {
      await hooks.reauth(trimmed);
      break;
    } catch (err) {
      if (isSecureApiError(err, 'unauthenticated')) {
        problem = WRONG_CODE;
      } else if (isSecureApiError(err, 'throttled')) {
        problem =
          err.retryAfter !== undefined
            ? `Too many attempts. Wait ${err.retryAfter} s, then try again.`
            : 'Too many attempts. Wait a little, then try again.';
      } else if (isSecureApiError(err, 'invalid')) {
        problem = err.message;
      } else {
        throw err;
      }
    }
  }
  return call();
}
