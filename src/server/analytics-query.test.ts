import { describe, expect, it } from 'vitest';
import { businessNumbersOf, businessesNamed, graphFields, metaList } from './analytics-query.js';

describe('metaList: a list as Meta takes one', () => {
  it.each([
    ['A,B', ['A', 'B']],
    [' A , B ', ['A', 'B']],
    ['[A,B]', ['A', 'B']],
    ['["A","B"]', ['A', 'B']],
    ['[ "A" ]', ['A']],
    ['[]', []],
    ['[ ]', []],
    // Meta's guide writes a quoted item holding several: ["COUNTRY,PHONE"].
    ['["A","B,C"]', ['A', 'B', 'C']],
  ])('%s', (text, items) => {
    expect(metaList('dimensions', text)).toEqual(items);
  });

  it.each([
    [',', 'has an empty item'],
    ['[A,,B]', 'has an empty item'],
    ['["A",""]', 'has an empty item'],
    ['a,A', 'names A twice'],
    ['["A",', 'is no list'],
    ['["A",1]', 'must be a list of strings'],
  ])('refuses %s', (text, words) => {
    expect(() => metaList('dimensions', text)).toThrow(`"dimensions" ${words}`);
  });
});

describe('businessNumbersOf: the display numbers a webhook body gives', () => {
  const change = (metadata: unknown) => ({ field: 'messages', value: { metadata } });
  it('reads each change of each entry naming its WABA, digits only, the last of a number winning', () => {
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'W1',
          changes: [
            change({ display_phone_number: '+1 (555) 000-1111', phone_number_id: 'PN1' }),
            change({ display_phone_number: '15550001112', phone_number_id: 'PN1' }),
            change({ display_phone_number: '15550002222', phone_number_id: 'PN2' }),
          ],
        },
        { id: 'W2', changes: [change({ display_phone_number: '4420000', phone_number_id: 'PN1' })] },
      ],
    };
    expect(businessNumbersOf(body)).toEqual([
      { waba: 'W1', business: 'PN1', displayNumber: '15550001112' },
      { waba: 'W1', business: 'PN2', displayNumber: '15550002222' },
      { waba: 'W2', business: 'PN1', displayNumber: '4420000' },
    ]);
  });

  it('gives nothing for what is no number of a WABA', () => {
    for (const body of [
      null,
      [],
      { entry: 'W1' },
      { entry: ['W1', { changes: [change({ display_phone_number: '1', phone_number_id: 'PN1' })] }] },
      { entry: [{ id: 'W1', changes: [7, change(null), change({ phone_number_id: 'PN1' })] }] },
      {
        entry: [{ id: 'W1', changes: [change({ display_phone_number: 'call us', phone_number_id: 'PN1' })] }],
      },
      {
        entry: [{ id: 'W1', changes: [change({ display_phone_number: '1\u0000', phone_number_id: 'PN1' })] }],
      },
      {
        entry: [
          { id: 'W1', changes: [change({ display_phone_number: '15550001111', phone_number_id: '' })] },
        ],
      },
      {
        entry: [
          { id: 'W1', changes: [change({ display_phone_number: 15550001111, phone_number_id: 'PN1' })] },
        ],
      },
      {
        entry: [
          { id: 'W1', changes: [change({ display_phone_number: '1'.repeat(21), phone_number_id: 'PN1' })] },
        ],
      },
    ]) {
      expect(businessNumbersOf(body), JSON.stringify(body)).toEqual([]);
    }
  });
});

describe('businessesNamed: phone_numbers as display numbers, else phone_number_ids', () => {
  const numbers = [
    { waba: 'W1', business: 'PN1', displayNumber: '15550001111' },
    { waba: 'W2', business: 'PN7', displayNumber: '15550001111' },
    { waba: 'W1', business: 'PN2', displayNumber: '15550002222' },
  ];
  it('finds every number of a display number, by its digits, and takes anything else as an id', () => {
    expect(businessesNamed(['+1 555 000 1111'], numbers)).toEqual(['PN1', 'PN7']);
    expect(businessesNamed(['15550002222', 'PN9'], numbers)).toEqual(['PN2', 'PN9']);
    expect(businessesNamed(['15559999999'], numbers)).toEqual(['15559999999']);
  });
});

describe("graphFields: Meta's fields= of GET /{WABA_ID}", () => {
  it('reads each field and its modifiers, lists in any of their forms, commas inside them kept', () => {
    expect(
      graphFields(
        'id,conversation_analytics.start(1685602800).end(1688194800).granularity(MONTHLY).phone_numbers([])' +
          '.dimensions(["CONVERSATION_CATEGORY","CONVERSATION_TYPE","COUNTRY","PHONE"]),' +
          'pricing_analytics.start(1).end(2).dimensions(PRICING_CATEGORY,TIER).country_codes()',
      ),
    ).toEqual([
      { name: 'id', modifiers: {} },
      {
        name: 'conversation_analytics',
        modifiers: {
          start: '1685602800',
          end: '1688194800',
          granularity: 'MONTHLY',
          phone_numbers: '[]',
          dimensions: '["CONVERSATION_CATEGORY","CONVERSATION_TYPE","COUNTRY","PHONE"]',
        },
      },
      {
        name: 'pricing_analytics',
        modifiers: { start: '1', end: '2', dimensions: 'PRICING_CATEGORY,TIER', country_codes: '[]' },
      },
    ]);
    // Spaces and line breaks between the parts, as Meta's documentation writes its examples.
    expect(graphFields(' conversation_analytics\n  .start(1)\n  .end(2) ')).toEqual([
      { name: 'conversation_analytics', modifiers: { start: '1', end: '2' } },
    ]);
  });

  it.each([
    ['', 'names no field'],
    ['analytics.start(1)', 'is not a field wameter answers'],
    ['pricing_analytics.start(1).start(2)', 'gives "start" twice'],
    ['pricing_analytics.conversation_types([REGULAR])', 'takes no "conversation_types"'],
    ['conversation_analytics.pricing_types([REGULAR])', 'takes no "pricing_types"'],
    ['pricing_analytics.start(1', 'is not closed'],
    ['pricing_analytics.start', 'is not closed'],
    ['pricing_analytics,pricing_analytics', 'names pricing_analytics twice'],
    ['pricing_analytics start(1)', 'cannot be read'],
    ['id.start(1)', 'takes no "start"'],
  ])('refuses %j', (text, words) => {
    expect(() => graphFields(text)).toThrow(words);
  });
});
