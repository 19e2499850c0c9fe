import {
  SecureApiError,
  describeError,
  interpretResponse,
  isSecureApiError,
  mapHttpError,
  parseRetryAfter
} from '../src/core/errors';

describe('client error mapping', () => {
  it('recognises the step-up answer', () => {
    const err = mapHttpError(403, {
      error: 'step-up required',
      reauth: '/secure/api/reauth',
      maxAgeSeconds: 300
    });
    expect(err.kind).toBe('step-up');
    expect(err.maxAgeSeconds).toBe(300);
  });

  it('tells other 403s apart', () => {
    expect(mapHttpError(403, { error: 'missing scope secure:users:admin' }).kind).toBe('forbidden');
    expect(mapHttpError(403, { message: 'Forbidden', reason: null }).kind).toBe('forbidden');
  });

  it('reads a 404 without our JSON as the server extension missing', () => {
    const err = mapHttpError(404, '<html>404: Not Found</html>');
    expect(err.kind).toBe('not-enabled');
    expect(err.message).toBe('the jupyter-secure server extension is not enabled on this server');
    expect(mapHttpError(404, { message: 'Not Found' }).kind).toBe('not-enabled');
  });

  it('reads a 404 with our JSON as a missing object', () => {
    const err = mapHttpError(404, { error: 'no such user', field: 'name' });
    expect(err.kind).toBe('not-found');
    expect(err.field).toBe('name');
  });

  it('keeps the field of a 400', () => {
    const err = mapHttpError(400, { error: 'unknown action', field: 'action' });
    expect(err.kind).toBe('invalid');
    expect(err.field).toBe('action');
    expect(describeError(err)).toBe('unknown action (action)');
  });

  it('maps 401, 429 with Retry-After, 503 and 500', () => {
    expect(mapHttpError(401, { error: 'wrong code' }).kind).toBe('unauthenticated');
    const t = mapHttpError(429, { error: 'too many attempts' }, '12');
    expect(t.kind).toBe('throttled');
    expect(t.retryAfter).toBe(12);
    expect(t.message).toBe('too many attempts (try again in 12 s)');
    expect(mapHttpError(503, { error: 'private queries are off' }).kind).toBe('unavailable');
    expect(mapHttpError(500, 'oops').kind).toBe('server');
    expect(mapHttpError(500, 'oops').message).toBe('HTTP 500');
  });

  it('parses Retry-After as seconds only', () => {
    expect(parseRetryAfter('3')).toBe(3);
    expect(parseRetryAfter('2.2')).toBe(3);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
  });

  it('reads 2xx bodies and rejects the rest', () => {
    expect(interpretResponse(200, '{"name":"sam"}')).toEqual({ name: 'sam' });
    expect(interpretResponse(204, '')).toBeNull();
    expect(() => interpretResponse(200, 'not json')).toThrow(SecureApiError);
    let caught: unknown;
    try {
      interpretResponse(429, '{"error":"slow down"}', '5');
    } catch (err) {
      caught = err;
    }
    expect(isSecureApiError(caught, 'throttled')).toBe(true);
    expect(isSecureApiError(caught, 'step-up')).toBe(false);
  });

  it('describes anything thrown', () => {
    expect(describeError(new Error('boom'))).toBe('boom');
    expect(describeError('text')).toBe('text');
    expect(describeError(new SecureApiError('network', 'Failed to fetch', 0))).toBe(
      'The server did not answer: Failed to fetch'
    );
  });
});
