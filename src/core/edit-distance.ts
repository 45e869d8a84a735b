// How far apart two words are, for the "did you mean …?" of a name that matches none (a market in a rate card,
// a setting in the configuration file).

/** Edits (insert, delete, substitute, swap two neighbours) from one text to another: "indai" → "india" is 1. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const previous = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (previous[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (previous[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/**
 * The one name of `known` closest to `word` in letters (case ignored), when it is at most a third of `word`'s
 * length away (at least 1 edit): `acounts` → `accounts`; undefined when none is that close, or when two are.
 */
export function closestName(word: string, known: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = limit + 1;
  let isTied = false;
  for (const name of known) {
    if (Math.abs(name.length - word.length) > limit) continue;
    const distance = editDistance(lower, name.toLowerCase());
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
      isTied = false;
    } else if (distance === bestDistance) isTied = true;
  }
  return isTied ? undefined : best;
}
