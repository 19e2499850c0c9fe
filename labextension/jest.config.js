/**
 * Unit tests of the pure cores (src/core): no browser, no JupyterLab, no
 * network. ts-jest compiles them with tsconfig.test.json (CommonJS).
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }]
  },
  moduleFileExtensions: ['ts', 'js', 'json']
};
