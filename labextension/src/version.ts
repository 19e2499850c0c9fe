/**
 * This extension's version. It must equal `version` in package.json and
 * `__version__` in jupyter_secure/_version.py (tests/test_packaging.py and
 * test/version.spec.ts check both); the handshake compares it with the
 * server's.
 */
export const VERSION = '0.1.0';
