import * as fs from 'fs';
import * as path from 'path';

import { VERSION } from '../src/version';

describe('version', () => {
  it('is the package version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    expect(VERSION).toBe(pkg.version);
  });
});
