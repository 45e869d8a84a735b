// The Result shape every expected outcome takes (Zod's safeParse idiom): values, not exceptions.
// Broken invariants still throw; only expected failures travel as `{ ok: false }`.

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function err<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}
