import { describe, expect, it } from 'vitest';
import { csvField } from './report.js';

describe('csvField', () => {
  it('quotes commas, quotes and line breaks (RFC 4180)', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
  });

  it('keeps text a spreadsheet would run as a formula as text, with a leading quote', () => {
    expect(csvField('=HYPERLINK("http://x","y")')).toBe('"\'=HYPERLINK(""http://x"",""y"")"');
    for (const start of ['+', '-', '@', '\t']) expect(csvField(`${start}1+1`)).toBe(`'${start}1+1`);
    expect(csvField('\rcmd')).toBe('"\'\rcmd"');
    expect(csvField('0.0014')).toBe('0.0014');
    expect(csvField('919876543210')).toBe('919876543210');
  });

  it('writes numbers and booleans as they are', () => {
    expect(csvField(-5)).toBe('-5');
    expect(csvField(12)).toBe('12');
    expect(csvField(true)).toBe('true');
  });
});
