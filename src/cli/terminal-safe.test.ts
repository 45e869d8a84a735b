// What wameter prints for a person holds ids taken from the input: an escape sequence in one (a WABA id, a
// user, a message id) must reach the terminal as text, never as a command to it (clear the screen, retitle
// the window, hide lines). JSON and CSV keep the value as it is, escaped their own way.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runWameter } from '../../test/support/cli.js';
import { terminalSafe } from './io.js';

const ESC = '\u001b';
const WABA = `W${ESC}[2J${ESC}]0;owned\u0007`;

function eventsFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'wameter-terminal-'));
  const path = join(dir, 'events.ndjson');
  const lines = [
    {
      kind: 'inbound',
      at: '2025-08-01T09:00:00Z',
      waba: WABA,
      business: 'PN1',
      user: '919876543210',
      id: 'i1',
    },
    {
      kind: 'outbound',
      at: '2025-08-01T10:00:00Z',
      waba: WABA,
      business: 'PN1',
      user: '919876543210',
      id: `m${ESC}[8m1`,
      template: 'marketing',
      delivered_at: '2025-08-01T10:00:05Z',
    },
    // Unplaceable: its finding, on stderr beside the table, names the WABA.
    {
      kind: 'outbound',
      at: '2025-08-01T10:00:00Z',
      waba: WABA,
      business: 'PN1',
      user: '999000',
      id: 'm2',
      template: 'utility',
      delivered_at: '2025-08-01T10:00:05Z',
    },
  ];
  writeFileSync(path, lines.map((line) => JSON.stringify(line)).join('\n'));
  return path;
}

describe('control characters of the input on a terminal', () => {
  it('are written as \\uXXXX, line feeds and tabs kept', () => {
    expect(terminalSafe(`a${ESC}[2Jb\u0007\r\n\tc\u009b`)).toBe('a\\u001b[2Jb\\u0007\\u000d\n\tc\\u009b');
    expect(terminalSafe('plain text\n')).toBe('plain text\n');
  });

  it('never reach the terminal from the rate table, explain or stderr; JSON keeps them as they are', async () => {
    const file = eventsFile();
    const table = await runWameter(['rate', file, '--allow-unpriced']);
    expect(table.out).toContain('W\\u001b[2J\\u001b]0;owned\\u0007'.slice(0, 15));
    for (const text of [table.out, table.err])
      expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);

    const explain = await runWameter(['explain', file, '--user', '919876543210']);
    expect(explain.out).toContain('m\\u001b[8m1');
    expect(explain.out).not.toContain(ESC);

    const json = await runWameter(['rate', file, '--allow-unpriced', '--format', 'json']);
    expect((JSON.parse(json.out) as { units: { waba: string }[] }).units[0]!.waba).toBe(WABA);
  });
});
