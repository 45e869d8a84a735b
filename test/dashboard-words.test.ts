import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SWITCH_REPORTED_OFF } from '../src/core/price-unit.js';

// The dashboard's own module (plain browser JavaScript, no DOM needed for this function).
interface DashboardWords {
  serviceWords(text: string): string;
}
const { serviceWords } = (await import(
  pathToFileURL(new URL('../web/js/dom.js', import.meta.url).pathname).href
)) as DashboardWords;

describe("the dashboard says a finding's advice as the service's user follows it", () => {
  it('rate cards: the server’s setting instead of --rate-cards', () => {
    expect(
      serviceWords(
        'import Meta\'s card in force on 2025-10-01 (--rate-cards; for the service, WAMETER_RATE_CARDS or "rateCards")',
      ),
    ).toBe(
      'import Meta\'s card in force on 2025-10-01 (the server’s rate cards: WAMETER_RATE_CARDS or "rateCards")',
    );
  });

  it('reported rules: the server’s setting instead of --no-reported, in the words the rater uses', () => {
    const words = `rates them under PMP-2025 (${SWITCH_REPORTED_OFF}); it is priced in its former region (${SWITCH_REPORTED_OFF})`;
    expect(serviceWords(words)).toBe(
      'rates them under PMP-2025 (the server’s setting: WAMETER_REPORTED_RULES=off or "reportedRules": false); ' +
        'it is priced in its former region (the server’s setting: WAMETER_REPORTED_RULES=off or "reportedRules": false)',
    );
  });

  it('leaves other words alone', () => {
    expect(serviceWords('add the WABA to the accounts file (--accounts)')).toBe(
      'add the WABA to the accounts file (--accounts)',
    );
    expect(serviceWords(undefined as unknown as string)).toBe('');
  });
});
