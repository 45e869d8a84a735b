// Two WABAs of one portfolio whose events name one message id (MESSAGE_OF_TWO_WABAS): each has its own unit
// of that id, so the live rating's diff must tell rows apart by WABA and id, not by id alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTestService,
  KEY_ALL,
  KEY_W1,
  KEY_W2,
  rateLinesAsBatch,
  sharedPortfolioAccounts,
} from '../../test/server-kit.js';

const dir = mkdtempSync(join(tmpdir(), 'wameter-shared-id-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const accountsPath = sharedPortfolioAccounts(dir);

const sent = (waba: string, business: string, user: string, id: string, at: string, deliveredAt: string) => ({
  kind: 'outbound',
  at,
  waba,
  business,
  user,
  id,
  template: 'marketing',
  delivered_at: deliveredAt,
});
// CBP-2023, India: a marketing conversation 0.0099.
const FIRST = [
  sent('W1', 'PN1', '919876543210', 'X', '2024-03-04T10:00:00Z', '2024-03-04T10:00:05Z'),
  sent('W2', 'PN2', '919876543211', 'X', '2024-03-04T11:00:00Z', '2024-03-04T11:00:05Z'),
];
// W2's earlier message: W2's X now rides on the conversation it opens, and W2's unit u_X is gone.
const LATER = [sent('W2', 'PN2', '919876543211', 'Y', '2024-03-04T10:30:00Z', '2024-03-04T10:30:05Z')];

async function batchUnits(lines: object[]) {
  const result = await rateLinesAsBatch(accountsPath, lines);
  return result.units.map((unit) => [unit.waba, unit.id, unit.amountMicros, unit.messages]);
}

describe('live rating of an id two WABAs name', () => {
  it("drops the unit of one WABA that vanished while the other WABA's unit of the same id stays", async () => {
    const service = await createTestService({ accountsPath });
    try {
      expect((await service.postEvents(FIRST)).status).toBe(200);
      await service.get('/v1/totals', KEY_ALL);
      expect((await service.postEvents(LATER)).status).toBe(200);
      const { units } = (await (await service.get('/v1/units', KEY_ALL)).json()) as {
        units: { waba: string; id: string; amount: string; messages: string[] }[];
      };
      const expected = await batchUnits([...FIRST, ...LATER]);
      expect(expected).toEqual([
        ['W1', 'u_X', 9900, ['X']],
        ['W2', 'u_Y', 9900, ['Y', 'X']],
      ]);
      expect(units.map((unit) => [unit.waba, unit.id, Number(unit.amount) * 1e6, unit.messages])).toEqual(
        expected,
      );
      const { totals } = (await (await service.get('/v1/totals', KEY_ALL)).json()) as {
        totals: Record<string, { amount: string; units: number }>;
      };
      expect(totals.USD).toMatchObject({ amount: '0.0198', units: 2 });
    } finally {
      await service.close();
    }
  });

  it("explains each WABA's message of the id to its own client only, with its own WABA", async () => {
    // Each decision carried the record of the id read first (W1's): W1's client, explaining W2's user, saw
    // W2's message (its number, category and delivery) labelled W1's, and W2's client saw no decision at all.
    const service = await createTestService({ accountsPath });
    try {
      expect((await service.postEvents(FIRST)).status).toBe(200);
      const decisionsOf = async (user: string, key: string) => {
        const answer = await service.get(`/v1/explain?user=${user}`, key);
        expect(answer.status).toBe(200);
        const { decisions } = (await answer.json()) as {
          decisions: { message_id: string; waba: string; business: string; user: string }[];
        };
        return decisions.map((d) => [d.message_id, d.waba, d.business, d.user]);
      };
      expect(await decisionsOf('919876543211', KEY_W1)).toEqual([]);
      expect(await decisionsOf('919876543211', KEY_W2)).toEqual([['X', 'W2', 'PN2', '919876543211']]);
      expect(await decisionsOf('919876543210', KEY_W1)).toEqual([['X', 'W1', 'PN1', '919876543210']]);
      expect(await decisionsOf('919876543210', KEY_W2)).toEqual([]);
    } finally {
      await service.close();
    }
  });
});
