// Dropping a test's PostgreSQL schema when a write the test left stuck may still hold its tables' locks.

import type pg from 'pg';

/**
 * `DROP SCHEMA … CASCADE`, again after a deadlock: a write a test left stuck (a blocked ingest, a timed-out
 * store) may still hold locks on some of the schema's tables (raw_webhooks, events, business_numbers) and wait
 * for others, and PostgreSQL then picks the DROP as the deadlock's victim (40P01) — the write goes on and ends,
 * and the schema can go.
 */
export async function dropSchema(admin: pg.Client, schema: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}
