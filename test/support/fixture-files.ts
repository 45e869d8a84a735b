import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The real webhook payloads (test/fixtures/webhooks, a copy of ../shared/fixtures/webhooks). */
const WEBHOOK_FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'webhooks');

/** Every `.json` file under the webhook fixtures, analytics exports and SOURCES.json too, in path order. */
export function fixtureJsonFiles(): string[] {
  return readdirSync(WEBHOOK_FIXTURES, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.json'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}
