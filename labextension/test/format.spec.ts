import {
  adminTabs,
  badgeLabel,
  badgeReason,
  datasetInUse,
  formatAmount,
  formatCI,
  formatCountdown,
  formatEntities,
  formatMeasured,
  maskNoteOf,
  mergeMaskNotes,
  measureSymbol,
  mfaStatus,
  spentFraction,
  versionMismatch
} from '../src/core/format';
import type { IDatasetBudget } from '../src/core/types';

describe('amounts', () => {
  it.each([
    ['0.375', '0.375'],
    ['0.3750', '0.375'],
    ['2.000', '2'],
    ['0', '0'],
    ['0.000', '0'],
    ['007.50', '7.5'],
    ['1e-3', '1e-3'],
    ['0.0000000001', '0.0000000001']
  ])('formatAmount(%s) = %s', (input, out) => {
    expect(formatAmount(input)).toBe(out);
  });

  it('shows missing amounts as a dash', () => {
    expect(formatAmount(null)).toBe('—');
    expect(formatAmount(undefined)).toBe('—');
  });

  it('names the measure by its letter', () => {
    expect(measureSymbol('rho')).toBe('ρ');
    expect(measureSymbol('epsilon')).toBe('ε');
    expect(measureSymbol('delta')).toBe('delta');
    expect(formatMeasured('rho', '0.3750')).toBe('ρ 0.375');
  });

  it.each([
    ['0.125', '0.5', 0.25],
    ['0', '0.5', 0],
    ['0.75', '0.5', 1],
    ['0.1', '0', 1],
    ['0', '0', 0],
    ['x', '1', 0]
  ])('spentFraction(%s, %s) = %s', (spent, budget, f) => {
    expect(spentFraction(spent, budget)).toBeCloseTo(f);
  });
});

describe('MFA countdown', () => {
  it.each([
    [299.9, '04:59'],
    [65, '01:05'],
    [5, '00:05'],
    [3600, '60:00'],
    [0.5, '00:00']
  ])('formatCountdown(%s) = %s', (s, out) => {
    expect(formatCountdown(s)).toBe(out);
  });

  it('runs out at zero', () => {
    expect(formatCountdown(0)).toBeNull();
    expect(formatCountdown(-3)).toBeNull();
    expect(formatCountdown(NaN)).toBeNull();
  });

  it('says a step-up is needed after freshUntil, or without one', () => {
    const now = 1_795_780_000_000;
    expect(mfaStatus(1_795_780_125, now)).toEqual({ text: 'MFA 02:05', fresh: true });
    expect(mfaStatus(1_795_780_000, now)).toEqual({ text: 'MFA: step-up needed', fresh: false });
    expect(mfaStatus(null, now).text).toBe('MFA: step-up needed');
    expect(mfaStatus(undefined, now).fresh).toBe(false);
  });
});

function ds(name: string, recentTimes: string[]): IDatasetBudget {
  return {
    name,
    measure: 'rho',
    budget: '0.5',
    spent: '0',
    remaining: '0.5',
    history: [],
    recent: recentTimes.map((time, i) => ({
      id: i,
      time,
      cost: '0.01',
      status: 'released',
      query: 'q',
      ci: null
    }))
  };
}

describe('the dataset in use', () => {
  it('is the one with the most recent charge', () => {
    const a = ds('a', ['2026-11-27T10:00:00+00:00']);
    const b = ds('b', ['2026-11-27T11:00:00+01:00']); // 10:00Z, same instant: first wins
    const c = ds('c', ['2026-11-27T10:30:00Z', '2026-11-27T09:00:00Z']);
    expect(datasetInUse([a, b, c])?.name).toBe('c');
    expect(datasetInUse([a, b])?.name).toBe('a');
  });

  it('is the first granted one when nothing was charged', () => {
    expect(datasetInUse([ds('x', []), ds('y', [])])?.name).toBe('x');
  });

  it('is none without datasets', () => {
    expect(datasetInUse([])).toBeNull();
  });
});

describe('confidence intervals', () => {
  it('formats level and bounds', () => {
    expect(formatCI({ level: 0.95, low: 41.2, high: 43.9 })).toBe('95% CI [41.2, 43.9]');
    expect(formatCI({ level: 0.9, low: 1.234567, high: 2 })).toBe('90% CI [1.2346, 2]');
    expect(formatCI(null)).toBe('—');
  });
});

describe('masked-output badges', () => {
  it('gives the reason the brief shows', () => {
    expect(
      badgeReason({
        masked: true,
        role: 'student',
        by: 'kernel',
        entities: { PERSON: 2, EMAIL_ADDRESS: 3 }
      })
    ).toBe('Masked for role student by the kernel: 3 × EMAIL_ADDRESS, 2 × PERSON');
  });

  it('names the server and the save', () => {
    expect(
      badgeReason({ masked: true, role: 'analyst', by: 'server', entities: { IBAN: 1 } })
    ).toBe('Masked for role analyst by the server: 1 × IBAN');
    expect(badgeReason({ masked: true, role: 'student', by: 'save', entities: {} })).toBe(
      'Masked for role student when the notebook was saved'
    );
  });

  it('copes with a missing role, source or entities', () => {
    expect(badgeReason({ masked: true })).toBe('Masked');
    expect(badgeReason({ masked: true, by: 'elsewhere' })).toBe('Masked by elsewhere');
  });

  it('says when masking failed and the output was withheld', () => {
    const note = { masked: true, role: 'student', by: 'kernel', failed: true, entities: {} };
    expect(badgeReason(note)).toBe(
      'Withheld for role student by the kernel: masking failed, so the output was not shown'
    );
    expect(badgeLabel(note)).toBe('withheld');
    expect(badgeLabel({ masked: true })).toBe('PII masked');
  });

  it('orders entities by count, then name, and drops zeros', () => {
    expect(formatEntities({ B: 1, A: 1, C: 5, D: 0 })).toBe('5 × C, 1 × A, 1 × B');
    expect(formatEntities(undefined)).toBe('');
  });

  it('reads the note only when it says masked', () => {
    expect(maskNoteOf({ jupyter_secure: { masked: true, role: 'r' } })).toEqual({
      masked: true,
      role: 'r'
    });
    expect(maskNoteOf({ jupyter_secure: { masked: false } })).toBeNull();
    expect(maskNoteOf({ jupyter_secure: 'yes' })).toBeNull();
    expect(maskNoteOf({})).toBeNull();
    expect(maskNoteOf(null)).toBeNull();
    expect(maskNoteOf(undefined)).toBeNull();
  });

  it('merges the notes of prints that JupyterLab shows as one output', () => {
    const first = { masked: true, by: 'server', role: 'student', entities: { EMAIL: 1 } };
    const once = mergeMaskNotes(undefined, first);
    expect(once).toEqual(first);
    expect(once.entities).not.toBe(first.entities); // a copy: later merges leave it alone
    const twice = mergeMaskNotes(once, {
      masked: true,
      by: 'server',
      role: 'student',
      entities: { EMAIL: 2, PERSON: 1 }
    });
    expect(twice.entities).toEqual({ EMAIL: 3, PERSON: 1 });
    expect(first.entities).toEqual({ EMAIL: 1 });
    expect(twice.failed).toBeUndefined();
    const failed = mergeMaskNotes({ ...twice, failed: true }, { masked: true, by: 'server' });
    expect(failed.failed).toBe(true);
    expect(failed.entities).toEqual({ EMAIL: 3, PERSON: 1 });
  });
});

describe('the handshake', () => {
  it('is quiet when the versions match', () => {
    expect(versionMismatch('0.1.0', '0.1.0')).toBeNull();
  });

  it('names both versions when they differ', () => {
    const text = versionMismatch('0.1.0', '0.2.0');
    expect(text).toContain('0.1.0');
    expect(text).toContain('0.2.0');
  });

  it('says so when the server gives no version', () => {
    expect(versionMismatch('0.1.0', undefined)).toContain('did not report its version');
  });
});

describe('admin tabs', () => {
  it('follow the scopes', () => {
    expect(adminTabs([])).toEqual([]);
    expect(adminTabs(['secure:audit:read'])).toEqual(['audit']);
    expect(adminTabs(['secure:alarms:read', 'secure:budgets:admin'])).toEqual([
      'budgets',
      'alarms'
    ]);
    expect(
      adminTabs([
        'secure:users:admin',
        'secure:budgets:admin',
        'secure:audit:admin',
        'secure:alarms:read'
      ])
    ).toEqual(['users', 'budgets', 'alarms', 'audit', 'review']);
  });
});
