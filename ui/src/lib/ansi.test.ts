import { describe, expect, it } from 'vitest';
import { applySgr, spanAttrs, stripAnsi, toSpans, xterm256 } from './ansi';

describe('toSpans', () => {
  it('keeps plain text as one unstyled span', () => {
    expect(toSpans('hello world').spans).toEqual([{ text: 'hello world' }]);
  });

  it('colours text between SGR codes and resets', () => {
    const { spans } = toSpans('a \x1b[31mred\x1b[0m b');
    expect(spans).toEqual([{ text: 'a ' }, { text: 'red', fg: 'c1' }, { text: ' b' }]);
  });

  it('combines bold, bright colours and backgrounds', () => {
    const { spans } = toSpans('\x1b[1;92;44mok\x1b[22mthin');
    expect(spans).toEqual([
      { text: 'ok', fg: 'c10', bg: 'c4', bold: true },
      { text: 'thin', fg: 'c10', bg: 'c4' },
    ]);
  });

  it('reads 256-colour and true-colour codes', () => {
    expect(toSpans('\x1b[38;5;196mx').spans[0].fg).toBe('#ff0000');
    expect(toSpans('\x1b[48;2;1;2;3mx').spans[0].bg).toBe('#010203');
    expect(toSpans('\x1b[38;5;9mx').spans[0].fg).toBe('c9');
  });

  it('carries the style over to the next line', () => {
    const first = toSpans('\x1b[33mwarn');
    const second = toSpans('still', first.end);
    expect(second.spans).toEqual([{ text: 'still', fg: 'c3' }]);
  });

  it('drops cursor movement, erase and OSC sequences', () => {
    const { spans } = toSpans('\x1b[2K\x1b[1Gprogress\x1b]0;title\x07 done');
    expect(spans).toEqual([{ text: 'progress done' }]);
  });

  it('ignores malformed colour arguments', () => {
    expect(applySgr({}, '38;5;999')).toEqual({});
    expect(applySgr({ fg: 'c1' }, '')).toEqual({});
  });
});

describe('helpers', () => {
  it('strips escapes for search', () => {
    expect(stripAnsi('\x1b[1m\x1b[31merror\x1b[0m: x')).toBe('error: x');
  });

  it('maps the xterm palette', () => {
    expect(xterm256(0)).toBe('c0');
    expect(xterm256(232)).toBe('#080808');
    expect(xterm256(16)).toBe('#000000');
    expect(xterm256(256)).toBeUndefined();
  });

  it('turns styles into classes and inline colours', () => {
    expect(spanAttrs({ fg: 'c2', bold: true, bg: '#123456' })).toEqual({ class: 'fg-c2 b', style: 'background:#123456' });
  });
});

describe('any input', () => {
  // A seeded generator, so a failure reproduces.
  function random(seed: number) {
    let x = seed;
    return () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
  }
  const pieces = ['a', ' ', '\x1b', '[', ']', ';', 'm', '0', '1', '3', '8', '5', '2', '9', 'K', '\x07', '\\', 'é', '\n'];

  it('never throws, and the spans hold exactly the text without escapes', () => {
    const next = random(42);
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(next() * 40);
      let line = '';
      for (let j = 0; j < len; j++) line += pieces[Math.floor(next() * pieces.length)];
      const { spans } = toSpans(line);
      expect(spans.map((s) => s.text).join('')).toBe(stripAnsi(line));
      expect(spans.every((s) => s.text.length > 0)).toBe(true);
    }
  });
});
