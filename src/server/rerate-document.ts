// The document a re-rate answers with, built once for `wameter rerate --format json` and POST /v1/rerate:
// two builders of the same object drifted apart silently. It only renames and orders; it never filters.

import type { Finding } from '../core/units.js';
import type { RerateReport } from './rating-service.js';

/** A re-rate's report in the words of the CLI's JSON and the API (snake_case), fields in this order. */
export interface RerateDocument {
  rating_id: string | null;
  wabas: string[];
  accounts_changed: boolean;
  rate_cards_changed: boolean;
  changed: RerateReport['changed'];
  unchanged: number;
  totals: RerateReport['totals'];
  totals_by_waba: RerateReport['totalsByWaba'];
  outside_period: RerateReport['outsidePeriod'];
  findings: Finding[];
}

/**
 * The document of `report`. `findings` are the report's as its reader may see them: all of them for the
 * CLI; for the API, those of the key's WABAs, in the words of its request (app.ts).
 */
export function rerateDocument(report: RerateReport, findings: Finding[] = report.findings): RerateDocument {
  return {
    rating_id: report.ratingId,
    wabas: report.wabas,
    accounts_changed: report.isAccountsChanged,
    rate_cards_changed: report.isRateCardsChanged,
    changed: report.changed,
    unchanged: report.unchanged,
    totals: report.totals,
    totals_by_waba: report.totalsByWaba,
    outside_period: report.outsidePeriod,
    findings,
  };
}
