// POST /v1/events answers the fields of its event lines that the contract does not name (they are not read),
// as `wameter rate` tells them on stderr (src/ingest/unknown-fields.test.ts).

import { describe, expect, it } from 'vitest';
import { createTestService, fixture, KEY_W1 } from '../../test/server-kit.js';

const OUTBOUND = {
  kind: 'outbound',
  at: '2025-08-01T10:00:00Z',
  waba: 'W1',
  business: 'PN1',
  user: '919876543210',
  id: 'wamid.o1',
  template: 'marketing',
  delivered_at: '2025-08-01T10:00:05Z',
};

describe('POST /v1/events', () => {
  it('answers the fields its event lines have beyond the contract, by kind, counted; none for webhook bodies', async () => {
    const service = await createTestService();
    try {
      const { template: _template, ...withoutTemplate } = OUTBOUND;
      const lines = [
        { ...withoutTemplate, id: 'wamid.a', category: 'marketing' },
        { ...withoutTemplate, id: 'wamid.b', category: 'marketing', campaign: 'x' },
        OUTBOUND,
      ].map((line) => JSON.stringify(line));
      const body = `${lines.join('\n')}\n${fixture('pywa/status_delivered.json')
        .toString('utf8')
        .replace(/\s*\n\s*/g, '')}\n`;
      const response = await service.postEvents(body);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({
        accepted: 4,
        unread_fields: [
          { kind: 'outbound', field: 'category', lines: 2, did_you_mean: 'template' },
          { kind: 'outbound', field: 'campaign', lines: 1 },
        ],
      });
      const clean = await service.postEvents([{ ...OUTBOUND, id: 'wamid.c' }]);
      expect(await clean.json()).not.toHaveProperty('unread_fields');
    } finally {
      await service.close();
    }
  });

  it('counts only the lines taken: a line refused for a WABA the key may not write is not counted', async () => {
    const service = await createTestService();
    try {
      const response = await service.postEvents([{ ...OUTBOUND, waba: 'W2', campaign: 'x' }], KEY_W1);
      const answer = (await response.json()) as Record<string, unknown>;
      expect(answer).toMatchObject({ accepted: 0, rejected: [{ line: 1, code: 'FORBIDDEN_WABA' }] });
      expect(answer).not.toHaveProperty('unread_fields');
    } finally {
      await service.close();
    }
  });
});
