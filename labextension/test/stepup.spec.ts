import { SecureApiError } from '../src/core/errors';
import { StepUpCancelled, WRONG_CODE, withStepUp } from '../src/core/stepup';

const stepUp = () =>
  new SecureApiError('step-up', 'A fresh second factor is needed', 403, { maxAgeSeconds: 300 });

/** A call that needs a step-up until `fresh` is set. */
function guarded() {
  const state = { fresh: false, calls: 0 };
  const call = jest.fn(async () => {
    state.calls++;
    if (!state.fresh) {
      throw stepUp();
    }
    return 'done';
  });
  return { state, call };
}

describe('step-up retry', () => {
  it('does not ask when the call succeeds', async () => {
    const askCode = jest.fn();
    const reauth = jest.fn();
    await expect(withStepUp(async () => 42, { askCode, reauth })).resolves.toBe(42);
    expect(askCode).not.toHaveBeenCalled();
    expect(reauth).not.toHaveBeenCalled();
  });

  it('asks for a code, posts it and retries once', async () => {
    const { state, call } = guarded();
    const askCode = jest.fn(async () => ' 123 456 ');
    const reauth = jest.fn(async (code: string) => {
      expect(code).toBe('123456');
      state.fresh = true;
    });
    await expect(withStepUp(call, { askCode, reauth })).resolves.toBe('done');
    expect(askCode).toHaveBeenCalledTimes(1);
    expect(askCode).toHaveBeenCalledWith(null);
    expect(call).toHaveBeenCalledTimes(2);
  });

  it('says a wrong code is wrong and asks again', async () => {
    const { state, call } = guarded();
    const codes = ['000000', '654321'];
    const askCode = jest.fn(async () => codes.shift() ?? null);
    const reauth = jest.fn(async (code: string) => {
      if (code !== '654321') {
        throw new SecureApiError('unauthenticated', 'wrong code', 401);
      }
      state.fresh = true;
    });
    await expect(withStepUp(call, { askCode, reauth })).resolves.toBe('done');
    expect(askCode.mock.calls).toEqual([[null], [WRONG_CODE]]);
  });

  it('passes on throttling with the wait', async () => {
    const { state, call } = guarded();
    const askCode = jest.fn().mockResolvedValueOnce('1').mockResolvedValueOnce('2');
    const reauth = jest
      .fn()
      .mockRejectedValueOnce(new SecureApiError('throttled', 'slow', 429, { retryAfter: 7 }))
      .mockImplementationOnce(async () => {
        state.fresh = true;
      });
    await expect(withStepUp(call, { askCode, reauth })).resolves.toBe('done');
    expect(askCode.mock.calls[1][0]).toBe('Too many attempts. Wait 7 s, then try again.');
  });

  it('asks again for an empty code without posting it', async () => {
    const { state, call } = guarded();
    const askCode = jest.fn().mockResolvedValueOnce('  ').mockResolvedValueOnce('111111');
    const reauth = jest.fn(async () => {
      state.fresh = true;
    });
    await withStepUp(call, { askCode, reauth });
    expect(reauth).toHaveBeenCalledTimes(1);
  });

  it('stops when the user cancels', async () => {
    const { call } = guarded();
    const reauth = jest.fn();
    await expect(withStepUp(call, { askCode: async () => null, reauth })).rejects.toBeInstanceOf(
      StepUpCancelled
    );
    expect(reauth).not.toHaveBeenCalled();
    expect(call).toHaveBeenCalledTimes(1);
  });

  it('retries only once', async () => {
    const { call } = guarded(); // never becomes fresh
    const reauth = jest.fn(async () => undefined);
    await expect(withStepUp(call, { askCode: async () => '123456', reauth })).rejects.toMatchObject(
      {
        kind: 'step-up'
      }
    );
    expect(call).toHaveBeenCalledTimes(2);
    expect(reauth).toHaveBeenCalledTimes(1);
  });

  it('gives up after too many wrong codes', async () => {
    const { call } = guarded();
    const reauth = jest.fn(async () => {
      throw new SecureApiError('unauthenticated', 'wrong code', 401);
    });
    await expect(
      withStepUp(call, { askCode: async () => '1', reauth, maxAttempts: 3 })
    ).rejects.toMatchObject({ kind: 'unauthenticated' });
    expect(reauth).toHaveBeenCalledTimes(3);
  });

  it('lets other errors through untouched', async () => {
    const forbidden = new SecureApiError('forbidden', 'no', 403);
    await expect(
      withStepUp(
        async () => {
          throw forbidden;
        },
        { askCode: jest.fn(), reauth: jest.fn() }
      )
    ).rejects.toBe(forbidden);
    const { call } = guarded();
    const down = new SecureApiError('network', 'down', 0);
    await expect(
      withStepUp(call, {
        askCode: async () => '1',
        reauth: async () => {
          throw down;
        }
      })
    ).rejects.toBe(down);
  });
});
