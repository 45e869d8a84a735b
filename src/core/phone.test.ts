import { describe, expect, it } from 'vitest';
import { normalisePhone } from './phone.js';

describe('normalisePhone: digits of other scripts and the doubled international prefix', () => {
  it.each([
    ['+٩١ ٩٨٧٦٥ ٤٣٢١٠', 'Arabic-Indic digits'],
    ['+۹۱ ۹۸۷۶۵ ۴۳۲۱۰', 'Extended Arabic-Indic (Persian, Urdu) digits'],
    ['+९१ ९८७६५ ४३२१०', 'Devanagari digits'],
    ['＋９１ ９８７６５－４３２１０', 'full-width plus, digits and hyphen'],
    ['（９１）９８７６５．４３２１０', 'full-width brackets and full stop'],
    ['+91 ٩٨٧٦٥ 43210', 'scripts mixed'],
  ])('%s (%s) is the number +91 98765 43210', (written) => {
    expect(normalisePhone(written)).toEqual({ ok: true, value: '919876543210' });
  });

  it('a decimal digit of any script is read at its value, not only 9 and 1', () => {
    // Bengali ০১২৩৪৫৬৭৮৯ and mathematical bold 𝟎𝟏… (a run of five runs of ten: each restarts at 0).
    expect(normalisePhone('+৪৪ ২০ ৭৯৪৬ ০৫৩১')).toEqual({ ok: true, value: '442079460531' });
    expect(normalisePhone('+𝟒𝟒𝟐𝟎𝟕𝟗𝟒𝟔𝟎𝟓𝟑𝟏')).toEqual({ ok: true, value: '442079460531' });
    expect(normalisePhone('+𝟺𝟺𝟸𝟶𝟽𝟿𝟺𝟼𝟶𝟻𝟹𝟷')).toEqual({ ok: true, value: '442079460531' });
  });

  it('"+0091…" writes the international prefix twice and is the number +91…', () => {
    expect(normalisePhone('+0091 98765 43210')).toEqual({ ok: true, value: '919876543210' });
    expect(normalisePhone('+00 44 20 7946 0531')).toEqual({ ok: true, value: '442079460531' });
  });

  it('a number whose digits start with 0 after its prefix is refused: no country code starts with 0', () => {
    for (const written of ['098765 43210', '+0 98765 43210', '000 91 98765 43210', '+000919876543210']) {
      const read = normalisePhone(written);
      expect(read.ok, written).toBe(false);
      if (!read.ok) expect(read.error).toContain('has no country code (no country code starts with 0');
    }
  });

  it('letters of other scripts are still no digits', () => {
    expect(normalisePhone('+91 98765 4321०x').ok).toBe(false);
    expect(normalisePhone('+٩١ ABC').ok).toBe(false);
  });
});
