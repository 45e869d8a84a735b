// Turns a traced rating into a user's story in words: each message of the user and of the business, the
// window or unit it opened or rode on, and what it cost and why. Pure: formatting only.

import { formatInstant } from './calendar.js';
import { formatMicros } from './money.js';
import { csvField, totalsOf, unitToJson, unpricedNote, type TotalsJson, type UnitJson } from './report.js';
import type { BillableUnit, TimelineEntry } from './units.js';

export interface ExplanationEntry {
  at: string;
  kind: 'inbound' | 'message' | 'closed' | 'expired';
  business: string;
  message_id?: string;
  unit_id?: string;
  rule?: string;
  era?: string;
  cost?: string;
  text: string;
}

export interface Explanation {
  user: string;
  business: string | null;
  entries: ExplanationEntry[];
  units: UnitJson[];
  totals: TotalsJson;
}

export function explainUser(
  user: string,
  business: string | undefined,
  timeline: readonly TimelineEntry[],
  allUnits: readonly BillableUnit[],
): Explanation {
  const units = allUnits.filter((u) => u.user === user && (!business || u.business === business));
  const unitById = new Map(units.map((u) => [u.id, u]));
  const entries: (ExplanationEntry & { atMs: number; order: number })[] = [];
  for (const line of timeline) {
    const entry: ExplanationEntry & { atMs: number; order: number } = {
      atMs: line.atMs,
      order: 1,
      at: formatInstant(line.atMs),
      kind: line.kind,
      business: line.business,
      message_id: line.messageId,
      text: line.reason,
    };
    if (line.kind === 'message' && line.unitId) {
      const unit = unitById.get(line.unitId);
      entry.unit_id = line.unitId;
      if (line.rule) entry.rule = line.rule;
      if (line.era) entry.era = line.era;
      if (unit && unit.messages[0] === line.messageId) {
        entry.cost =
          unit.amountMicros === null ? 'unpriced' : `${formatMicros(unit.amountMicros)} ${unit.currency}`;
        entry.text += ` \u2014 ${costInWords(unit)}`;
      } else {
        entry.cost = `0 ${unit?.currency ?? ''}`.trim();
      }
    }
    entries.push(entry);
  }
  for (const unit of units) {
    if (unit.closedAtMs !== undefined) {
      entries.push({
        atMs: unit.closedAtMs,
        order: 0,
        at: formatInstant(unit.closedAtMs),
        kind: 'closed',
        business: unit.business,
        unit_id: unit.id,
        text: `${unit.category} conversation ${unit.id} closed early by a free entry point`,
      });
    } else if (unit.expiresAtMs !== null) {
      entries.push({
        atMs: unit.expiresAtMs,
        order: 0,
        at: formatInstant(unit.expiresAtMs),
        kind: 'expired',
        business: unit.business,
        unit_id: unit.id,
        text: `${unit.category === 'referral_conversion' ? 'free entry point' : `${unit.category} conversation`} ${unit.id} ended`,
      });
    }
  }
  entries.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
  return {
    user,
    business: business ?? null,
    entries: entries.map(({ atMs: _atMs, order: _order, ...entry }) => entry),
    units: units.map(unitToJson),
    totals: totalsOf(units),
  };
}

/** What a unit cost, and why, in words. */
export function costInWords(unit: BillableUnit): string {
  const where = [
    unit.market ?? 'unknown market',
    unit.rateCard ? `rate card ${unit.rateCard}` : 'no rate card',
  ]
    .filter(Boolean)
    .join(', ');
  switch (unit.type) {
    case 'regular':
      if (unit.amountMicros === null) return `charged, but no price is known (${where}): see findings`;
      return `charged ${formatMicros(unit.amountMicros)} ${unit.currency} (${unit.category}, ${where}${
        unit.tier ? `, volume tier ${unit.tier.band}, message ${unit.tier.count} of ${unit.tier.month}` : ''
      })`;
    case 'free_tier':
      return `free: within the monthly free allowance (${where}${unit.rateMicros !== null ? `, would have cost ${formatMicros(unit.rateMicros)} ${unit.currency}` : ''})`;
    case 'free_entry_point':
      return 'free: free entry point';
    case 'free_customer_service':
      return 'free: customer service';
  }
}

/** The explanation as lines of text for a terminal. */
export function formatExplanation(explanation: Explanation): string {
  const lines: string[] = [];
  lines.push(
    `Timeline of user ${explanation.user}${explanation.business ? ` with business number ${explanation.business}` : ''}`,
  );
  if (explanation.entries.length === 0) lines.push('  (no messages for this user in the input)');
  for (const entry of explanation.entries) {
    const who = explanation.business ? '' : ` [${entry.business}]`;
    lines.push(`  ${entry.at}${who}  ${entry.text}`);
  }
  lines.push('');
  for (const [currency, totals] of Object.entries(explanation.totals)) {
    lines.push(
      `Total: ${totals.amount} ${currency} over ${totals.units} unit(s)${unpricedNote(totals.unpriced)}`,
    );
  }
  return lines.join('\n');
}

const EXPLANATION_COLUMNS = [
  'at',
  'kind',
  'business',
  'message_id',
  'unit_id',
  'era',
  'rule',
  'cost',
  'text',
] as const;

/** The story as CSV: one row per line, the same fields as the JSON entries. */
export function explanationCsv(explanation: Explanation): string {
  const rows = [EXPLANATION_COLUMNS.join(',')];
  for (const entry of explanation.entries) {
    rows.push(EXPLANATION_COLUMNS.map((column) => csvField(entry[column])).join(','));
  }
  return `${rows.join('\n')}\n`;
}
