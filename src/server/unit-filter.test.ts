import { describe, expect, it } from 'vitest';
import type { UnitFilter } from '../store/store.js';
import { joinScopedUser, unitOrderQuery } from './unit-filter.js';

describe('joinScopedUser', () => {
  const joinWith = async (user: string | undefined, number: string | undefined) => {
    const asked: string[] = [];
    const filter: UnitFilter = user === undefined ? {} : { user };
    await joinScopedUser(filter, (id) => {
      asked.push(id);
      return Promise.resolve(number);
    });
    return { filter, asked };
  };

  it('asks the rating for the number of an id shaped as Meta writes scoped ids, and filters by both', async () => {
    for (const id of ['US.13491208655302741918', 'user.9373795779eb', 'US.ENT.1181']) {
      const { filter, asked } = await joinWith(id, '972987654321');
      expect(asked).toEqual([id]);
      expect(filter).toEqual({ user: id, joinedNumber: '972987654321' });
    }
  });

  it('leaves an id alone that the rating joined to no number', async () => {
    const { filter } = await joinWith('US.13491208655302741918', undefined);
    expect(filter).toEqual({ user: 'US.13491208655302741918' });
  });

  it('costs no rating for a phone number, a value of no user form, or no user at all', async () => {
    for (const user of ['972987654321', 'abc', '12', 'US 1349', undefined]) {
      const { filter, asked } = await joinWith(user, '972987654321');
      expect(asked, String(user)).toEqual([]);
      expect(filter.joinedNumber).toBeUndefined();
    }
  });
});

describe('unitOrderQuery', () => {
  const orderOf = (text: string | undefined) =>
    unitOrderQuery((name) => (name === 'order' ? text : undefined));

  it('reads the orders in any letter case, the time order when absent', () => {
    expect(orderOf(undefined)).toEqual({ ok: true, value: 'opened_at' });
    expect(orderOf('')).toEqual({ ok: true, value: 'opened_at' });
    expect(orderOf('amount_desc')).toEqual({ ok: true, value: 'amount_desc' });
    expect(orderOf('AMOUNT_DESC')).toEqual({ ok: true, value: 'amount_desc' });
    expect(orderOf('opened_at')).toEqual({ ok: true, value: 'opened_at' });
  });

  it('refuses another word naming the orders, never listing in the default order as if sorted', () => {
    expect(orderOf('-amount')).toEqual({
      ok: false,
      error: {
        code: 'BAD_QUERY',
        message:
          '"order" "-amount" is no order of the units: give opened_at (the default, by opening time) or amount_desc (the dearest first, per currency).',
      },
    });
  });
});
