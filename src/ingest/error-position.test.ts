import { describe, expect, it } from 'vitest';
import { JsonTextIndex, errorPath, offsetOfError } from './error-position.js';
import { parseEventValue } from './parse-event.js';

/** The text at `offset` up to the end of its line. */
function at(text: string, offset: number | undefined): string | undefined {
  if (offset === undefined) return undefined;
  const end = text.indexOf('\n', offset);
  return text.slice(offset, end === -1 ? text.length : end);
}

describe('errorPath reads the place a parse-event message names', () => {
  it.each([
    [
      'entry[0].changes[1].value.statuses[2] "timestamp": "x" is not an instant',
      { path: ['entry', 0, 'changes', 1, 'value', 'statuses', 2], field: ['timestamp'], isNeed: false },
    ],
    [
      'entry[0].changes[0].value.messages[3] needs "id" (the message\'s wamid)',
      { path: ['entry', 0, 'changes', 0, 'value', 'messages', 3], field: ['id'], isNeed: true },
    ],
    [
      'entry[2].changes[0].value.statuses[0]: its entry needs "id" (the WhatsApp Business Account id)',
      { path: ['entry', 2], field: ['id'], isNeed: true },
    ],
    [
      'entry[0].changes[4].value.messages[0]: its value\'s "metadata.phone_number_id" must be a non-empty string',
      { path: ['entry', 0, 'changes', 4, 'value'], field: ['metadata', 'phone_number_id'], isNeed: false },
    ],
    [
      'entry[0].changes[0]: its value needs "metadata.phone_number_id" (the business number)',
      { path: ['entry', 0, 'changes', 0, 'value'], field: ['metadata', 'phone_number_id'], isNeed: true },
    ],
    ['entry[1] must be an object, not 5', { path: ['entry', 1], field: undefined, isNeed: false }],
    [
      'entry[0].changes[0].value.auth_international_rate_eligibility.exception_countries[1] needs "country_code"',
      {
        path: [
          'entry',
          0,
          'changes',
          0,
          'value',
          'auth_international_rate_eligibility',
          'exception_countries',
          1,
        ],
        field: ['country_code'],
        isNeed: true,
      },
    ],
    ['webhook body has "object": "page"; wameter reads…', { path: [], field: ['object'], isNeed: false }],
    ['webhook body needs "entry" (an array of entries)', { path: [], field: ['entry'], isNeed: true }],
    ['outbound line "template" must be …', { path: [], field: ['template'], isNeed: false }],
    ['status line needs "id" (…)', { path: [], field: ['id'], isNeed: true }],
    [
      '"kind" must be "inbound", "outbound" or "status", not "nope"',
      { path: [], field: ['kind'], isNeed: false },
    ],
    [
      'expected an event line ({"kind":…}) or a webhook body, not an array',
      { path: [], field: undefined, isNeed: false },
    ],
  ])('%s', (message, expected) => {
    expect(errorPath(message)).toEqual(expected);
  });

  it('a field that is not under the path named (contacts[] of the value) cannot be placed', () => {
    expect(errorPath('entry[0].changes[0].value.messages[0] "contacts[].wa_id" holds a NUL')).toBeUndefined();
  });
});

describe('JsonTextIndex finds where a value is written', () => {
  const text = [
    '{',
    '  "a": "a string with } ] { [ , : and \\" in it",',
    '  "list": [ 1, -2.5e3, true, null, {"x": "}"}, [ [ ] ] ],',
    '  "__proto__": {"constructor": 1},',
    '  "nested": {',
    '    "k": 1,',
    '    "k": {"deep": "last"}',
    '  }',
    '}',
  ].join('\n');
  const index = new JsonTextIndex(text, 0, text.length);

  it('object members at their key, array elements at their value, strings with brackets skipped', () => {
    expect(at(text, index.offsetOf(['list']))).toMatch(/^"list"/);
    expect(at(text, index.offsetOf(['list', 1]))).toMatch(/^-2\.5e3,/);
    expect(at(text, index.offsetOf(['list', 4, 'x']))).toMatch(/^"x": "}"/);
    expect(at(text, index.offsetOf(['list', 5, 0]))).toMatch(/^\[ \] \]/);
    expect(at(text, index.offsetOf(['__proto__', 'constructor']))).toMatch(/^"constructor"/);
  });

  it('a key written twice is the last one, as JSON.parse keeps it', () => {
    expect(at(text, index.offsetOf(['nested', 'k', 'deep']))).toBe('"deep": "last"}');
  });

  it('a path the text does not have: undefined, never an inherited property', () => {
    expect(index.offsetOf(['missing'])).toBeUndefined();
    expect(index.offsetOf(['list', 6])).toBeUndefined();
    expect(index.offsetOf(['a', 'b'])).toBeUndefined();
    expect(index.offsetOf(['constructor'])).toBeUndefined();
    expect(index.offsetOf(['list', 'length'])).toBeUndefined();
  });

  it('a value within a larger text (one document of several)', () => {
    const two = `{"a": 1}\n{\n  "b": {\n    "c": 2\n  }\n}\n`;
    const second = new JsonTextIndex(two, two.indexOf('{', 1), two.length - 1);
    expect(at(two, second.offsetOf(['b', 'c']))).toBe('"c": 2');
    expect(second.offsetOf(['a'])).toBeUndefined();
  });
});

describe('offsetOfError places the errors parse-event gives', () => {
  const status = (fields: object) => ({
    id: 's1',
    status: 'sent',
    timestamp: '1750030073',
    recipient_id: 'U1',
    ...fields,
  });
  const body = (statuses: object[], entryId: unknown = 'W1', phoneNumberId: unknown = 'PN1') => ({
    object: 'whatsapp_business_account',
    entry: [
      {
        ...(entryId === 'absent' ? {} : { id: entryId }),
        changes: [{ field: 'messages', value: { metadata: { phone_number_id: phoneNumberId }, statuses } }],
      },
    ],
  });

  it.each([
    ['a bad instant', body([status({}), status({ timestamp: 'soon' })]), '"timestamp": "soon"'],
    ['a missing id, at its status', body([status({ id: undefined })]), '{'],
    ['a number for an id', body([status({ id: 5 })]), '"id": 5'],
    ['its entry without id, at the entry', body([status({})], 'absent'), '{'],
    ['the business number not a string', body([status({})], 'W1', 7), '"phone_number_id": 7'],
    ['a webhook body of another product', { ...body([]), object: 'page' }, '"object": "page"'],
  ])('%s', (_what, value, expected) => {
    const text = JSON.stringify(value, null, 2);
    const parsed = parseEventValue(JSON.parse(text));
    const messages = parsed.ok ? parsed.value.rejected.map((r) => r.message) : [parsed.error.message];
    expect(messages).toHaveLength(1);
    const index = new JsonTextIndex(text, 0, text.length);
    expect(
      at(text, offsetOfError(index, [], messages[0]!))
        ?.trim()
        .replace(/,$/, ''),
    ).toBe(expected);
  });
});
