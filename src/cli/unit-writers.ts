// Writers of rated units for the terminal: the contract's JSON document (streamed, so millions of units
// never sit in memory), CSV, and a human table. Each takes units as they come, then the closing parts.

import { formatInstant } from '../core/calendar.js';
import { formatMicros } from '../core/money.js';
import {
  CSV_COLUMNS,
  TotalsAccumulator,
  pendingToJson,
  unitCsvRow,
  unitToJson,
  unpricedNote,
} from '../core/report.js';
import type { BillableUnit, Finding, PendingMessage } from '../core/units.js';
import { terminalSafe } from './io.js';
import { findingLine } from './unpriced.js';

export type OutputFormat = 'table' | 'json' | 'csv';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'csv'];

export interface UnitWriter {
  unit(unit: BillableUnit): void;
  end(pending: PendingMessage[], findings: Finding[]): void;
}

/** Buffers output into large writes; stdout to a file or pipe is synchronous on Linux, so memory stays flat. */
class Output {
  private chunks: string[] = [];
  private size = 0;
  constructor(private readonly write: (text: string) => void) {}
  push(text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    if (this.size > 1 << 16) this.flush();
  }
  flush(): void {
    if (this.chunks.length === 0) return;
    this.write(this.chunks.join(''));
    this.chunks = [];
    this.size = 0;
  }
}

/** `timeZoneOf`: each WABA's time zone, as the rating used it (each unit's `local_date`). */
export function createUnitWriter(
  format: OutputFormat,
  write: (text: string) => void,
  timeZoneOf: (waba: string) => string,
): UnitWriter {
  // A table is read by a person on a terminal: no control character of the input reaches it (io.ts).
  const out = new Output(format === 'table' ? (text) => write(terminalSafe(text)) : write);
  const totals = new TotalsAccumulator();
  // Each WABA's own share, for a provider re-billing each client (as `rerate` gives its "By WABA").
  const byWaba = new Map<string, TotalsAccumulator>();
  const add = (unit: BillableUnit) => {
    totals.add(unit);
    let ofWaba = byWaba.get(unit.waba);
    if (!ofWaba) byWaba.set(unit.waba, (ofWaba = new TotalsAccumulator()));
    ofWaba.add(unit);
  };
  const totalsByWaba = () =>
    Object.fromEntries(
      [...byWaba.keys()].sort(compareWabas).map((waba) => [waba, byWaba.get(waba)!.toJson()] as const),
    );
  switch (format) {
    case 'json': {
      let isFirst = true;
      out.push('{"units":[');
      return {
        unit(unit) {
          add(unit);
          out.push(`${isFirst ? '\n' : ',\n'}${JSON.stringify(unitToJson(unit, timeZoneOf(unit.waba)))}`);
          isFirst = false;
        },
        end(pending, findings) {
          out.push(`\n],"pending":${JSON.stringify(pending.map(pendingToJson))}`);
          out.push(`,"totals":${JSON.stringify(totals.toJson())}`);
          out.push(`,"totals_by_waba":${JSON.stringify(totalsByWaba())}`);
          out.push(`,"findings":${JSON.stringify(findings)}}\n`);
          out.flush();
        },
      };
    }
    case 'csv': {
      out.push(`${CSV_COLUMNS.join(',')}\n`);
      return {
        unit(unit) {
          out.push(`${unitCsvRow(unit, timeZoneOf(unit.waba))}\n`);
        },
        end() {
          out.flush();
        },
      };
    }
    case 'table': {
      out.push(`${TABLE_HEADER}\n`);
      let count = 0;
      return {
        unit(unit) {
          add(unit);
          count += 1;
          out.push(`${tableRow(unit)}\n`);
        },
        end(pending, findings) {
          if (count === 0) out.push('  (no billable units)\n');
          out.push('\nTotals\n');
          const json = totals.toJson();
          for (const [currency, total] of Object.entries(json)) {
            out.push(
              `  ${currency}  ${total.amount.padStart(12)}  over ${total.units} unit(s)${unpricedNote(total.unpriced)}\n`,
            );
            for (const [category, entry] of Object.entries(total.by_category)) {
              out.push(
                `    ${category.padEnd(28)} ${String(entry.units).padStart(8)} unit(s)  ${entry.amount.padStart(12)}${unpricedNote(entry.unpriced)}\n`,
              );
            }
          }
          if (Object.keys(json).length === 0) out.push('  nothing charged\n');
          if (byWaba.size > 1) {
            out.push('\nBy WABA\n');
            for (const [waba, ofWaba] of Object.entries(totalsByWaba())) {
              for (const [currency, total] of Object.entries(ofWaba)) {
                out.push(
                  `  ${waba.padEnd(20)} ${currency}  ${total.amount.padStart(12)}  over ${total.units} unit(s)${unpricedNote(total.unpriced)}\n`,
                );
              }
            }
          }
          if (pending.length > 0) {
            out.push(`\nPending (sent, not delivered: never charged until delivered): ${pending.length}\n`);
            for (const message of pending.slice(0, 20)) {
              out.push(`  ${message.id}  to ${message.user}  sent ${formatInstant(message.sentAtMs)}\n`);
            }
            if (pending.length > 20)
              out.push(`  … and ${pending.length - 20} more (use --format json for all)\n`);
          }
          if (findings.length > 0) {
            out.push(`\nFindings\n`);
            for (const finding of findings) out.push(`  ${findingLine(finding)}\n`);
          }
          out.flush();
        },
      };
    }
  }
}

const TABLE_HEADER = [
  'opened (UTC)'.padEnd(20),
  'waba'.padEnd(16),
  'user'.padEnd(16),
  'market'.padEnd(22),
  'category'.padEnd(28),
  'type'.padEnd(21),
  'amount'.padStart(10),
  ' cur',
  ' msgs',
].join(' ');

function tableRow(unit: BillableUnit): string {
  return [
    // To the second, so that every row's columns line up (json and csv keep the milliseconds).
    formatInstant(Math.floor(unit.openedAtMs / 1000) * 1000).padEnd(20),
    clip(unit.waba, 16),
    clip(unit.user, 16),
    clip(unit.market ?? '?', 22),
    clip(`${unit.category}${unit.unit === 'conversation' ? ' conv.' : ''}`, 28),
    clip(unit.type, 21),
    (unit.amountMicros === null ? 'unpriced' : formatMicros(unit.amountMicros)).padStart(10),
    ` ${unit.currency}`,
    String(unit.messages.length).padStart(5),
  ].join(' ');
}

function clip(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

/** WABA ids in order: by length, then by text (numeric ids of one length sort as numbers). */
function compareWabas(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
