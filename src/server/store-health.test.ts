import { describe, expect, it } from 'vitest';
import { createStoreHealth, writeFailureHint } from './store-health.js';

const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('the readiness reason of a failed write', () => {
  it.each([
    [coded('database or disk is full', 'SQLITE_FULL'), 'the disk is full'],
    [coded('no space left on device', 'ENOSPC'), 'the disk is full'],
    [coded('could not extend file', '53100'), 'the disk is full'],
    [coded('attempt to write a readonly database', 'SQLITE_READONLY'), 'the database is read-only'],
    [coded('cannot execute INSERT in a read-only transaction', '25006'), 'the database is read-only'],
    [coded('database is locked', 'SQLITE_BUSY'), 'another process holds a lock on the database'],
    [
      coded('database disk image is malformed', 'SQLITE_CORRUPT'),
      'the database file is damaged: restore it from a backup (docs/service.md, "Backup and restore")',
    ],
    [
      coded('invalid page in block 12 of relation base/16384/16385', 'XX001'),
      'the database file is damaged: restore it from a backup (docs/service.md, "Backup and restore")',
    ],
    [
      coded('relation "raw_webhooks" does not exist', '42P01'),
      'a table is missing: was the schema dropped or renamed?',
    ],
  ])('says what the error code tells: %s', (error, hint) => {
    expect(writeFailureHint(error)).toBe(hint);
  });

  it('adds no guess when the code tells nothing more than the message', async () => {
    expect(writeFailureHint(new Error('Connection terminated unexpectedly'))).toBeNull();
    expect(writeFailureHint('a string')).toBeNull();
    const health = createStoreHealth({ clock: () => 0 });
    health.writeFailed(coded('database is locked', 'SQLITE_BUSY'), 'ingest');
    const verdict = await health.check(() => Promise.resolve());
    expect(verdict).toEqual({
      isReady: false,
      reason:
        'the last write of webhooks or events failed 0 s ago: database is locked (another process holds a lock on the database); ready again once such a write succeeds',
    });
    health.writeFailed(new Error('relation "units" does not exist'), 'rating');
    const plain = await health.check(() => Promise.resolve());
    expect(plain.isReady).toBe(false);
    expect(JSON.stringify(plain)).not.toContain('disk full');
  });
});
