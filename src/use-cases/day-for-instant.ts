// What to write instead of a calendar day given where an instant is taken (`wameter rerate --from/--to`, the
// "from"/"to" of POST /v1/rerate): the instant the day begins on the clock of the WABAs concerned, since a
// day's UTC midnight is not their billing day's edge. Pure: the caller gives the WABAs and their time zones.

import { firstInstantOfDay, formatInstant } from '../core/calendar.js';

/** How many WABAs of one clock a hint names before it counts the rest. */
const WABAS_NAMED = 5;

/**
 * Why `day` (a calendar day, `isCalendarDay`) was refused for `field` ("--from", `"to"`), saying exactly what to
 * write: for a start, the instant `day` begins on the clock of `wabas`; for an end (`role` `to`, before which
 * units are reported), the instant the next day begins — one instant when their clocks agree, else each clock's.
 * `write` says a value as the caller's user types it (`--from 2025-07-01T03:00:00Z`); `narrow`, how to re-rate
 * one WABA alone (`--waba`).
 */
export function dayForInstantHint(options: {
  field: string;
  role: 'from' | 'to';
  day: string;
  wabas: readonly string[];
  timeZoneOf: (waba: string) => string;
  write: (instant: string) => string;
  narrow: string;
}): string {
  const { field, role, day, wabas, timeZoneOf, write, narrow } = options;
  const edge = role === 'from' ? day : nextDay(day);
  const byInstant = new Map<number, Map<string, string[]>>();
  for (const waba of wabas) {
    const zone = timeZoneOf(waba);
    const atMs = firstInstantOfDay(edge, zone);
    let zones = byInstant.get(atMs);
    if (!zones) byInstant.set(atMs, (zones = new Map()));
    let named = zones.get(zone);
    if (!named) zones.set(zone, (named = []));
    named.push(waba);
  }
  const clocks = (zones: Map<string, string[]>) =>
    [...zones]
      .map(([zone, named]) => {
        const shown = named.slice(0, WABAS_NAMED).join(', ');
        const more = named.length > WABAS_NAMED ? ` and ${named.length - WABAS_NAMED} more` : '';
        return `${zone}: ${shown}${more}`;
      })
      .join('; ');
  const what =
    role === 'from'
      ? `${field}: "${day}" is a day, and ${field} takes an instant (units opened at or after it are reported).`
      : `${field}: "${day}" is a day, and ${field} takes an instant (units opened before it are reported).`;
  const instants = [...byInstant.keys()].sort((a, b) => a - b);
  const whose = wabas.length === 1 ? 'the WABA re-rated' : 'the WABAs re-rated';
  if (instants.length <= 1) {
    const atMs = instants[0] ?? firstInstantOfDay(edge, 'UTC');
    const clock = instants.length === 0 ? 'UTC' : clocks(byInstant.get(atMs)!);
    const begins =
      role === 'from'
        ? `${day} begins at ${formatInstant(atMs)}`
        : `To report the whole of ${day}, give the instant ${edge} begins: ${formatInstant(atMs)}`;
    return `${what} ${begins} on the clock of ${whose} (${clock}): write ${write(formatInstant(atMs))}`;
  }
  const each = instants.map((atMs) => `${formatInstant(atMs)} (${clocks(byInstant.get(atMs)!)})`).join(', ');
  // The earliest start, or the latest end, takes in the whole day on every clock.
  const widest = role === 'from' ? instants[0]! : instants.at(-1)!;
  const begins =
    role === 'from'
      ? `${day} begins at another instant on each clock of ${whose}`
      : `To report the whole of ${day}, give the instant ${edge} begins, another on each clock of ${whose}`;
  return (
    `${what} ${begins}: ${each}; one period is reported for all: write the instant of the clock you mean ` +
    `(the ${role === 'from' ? 'earliest' : 'latest'}, ${write(formatInstant(widest))}, takes in the whole day on every clock), ` +
    `or give ${narrow} to re-rate one WABA's portfolio`
  );
}

/** The calendar day after `day` (`YYYY-MM-DD`), by its UTC midnight (a day is 24 h there). */
function nextDay(day: string): string {
  return new Date(firstInstantOfDay(day, 'UTC') + 86_400_000).toISOString().slice(0, 10);
}
