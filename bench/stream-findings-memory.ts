// What a streaming rater holds for findings: N messages each reported both delivered and failed (one
// DELIVERED_AND_FAILED finding of their WABA counts them all) rated as a stream, the heap measured after a
// full collection, before finish().
// Run: npm run build && node --expose-gc dist/bench/stream-findings-memory.js [messages, default 200000]

import { Rater } from '../src/core/rate-events.js';
import { loadRatingSetup } from '../src/use-cases/load-rating-setup.js';

const count = Number(process.argv[2] ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!Number.isInteger(count) || count < 1 || gc === undefined) {
  console.error('usage: node --expose-gc dist/bench/stream-findings-memory.js [messages, default 200000]');
  process.exit(1);
}
const setup = await loadRatingSetup({});
if (!setup.ok) throw new Error(setup.error.message);
let units = 0;
const rater = new Rater(
  {
    accountFor: (waba) => setup.value.accountBook.accountFor(waba),
    rateBook: setup.value.rateBook,
    markets: setup.value.markets,
    maxLatenessMs: 60_000,
  },
  { unit: () => units++, pending: () => {} },
);
const startMs = Date.parse('2025-10-01T00:00:00Z');
for (let i = 0; i < count; i++) {
  const atMs = startMs + i * 1000;
  const id = `wamid.${i}`;
  rater.add({
    kind: 'outbound',
    atMs,
    waba: 'W1',
    business: 'PN1',
    user: String(919800000000 + i),
    id,
    template: 'marketing',
  });
  rater.add({ kind: 'status', atMs: atMs + 1000, id, status: 'delivered', waba: 'W1' });
  rater.add({ kind: 'status', atMs: atMs + 2000, id, status: 'failed', waba: 'W1' });
}
gc();
const heapMb = process.memoryUsage().heapUsed / 1e6;
const { findings } = rater.finish();
console.log(
  `${count.toLocaleString('en-US')} messages, ${units.toLocaleString('en-US')} units, ${findings.length.toLocaleString('en-US')} findings; heap before finish ${heapMb.toFixed(1)} MB`,
);
