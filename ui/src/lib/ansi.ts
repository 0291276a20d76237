// ANSI escape sequences → styled spans. Only SGR (colours, bold, ...) is
// rendered; every other control sequence is dropped so logs from tools that
// move the cursor or clear lines still read cleanly.

export interface Style {
  fg?: string; // a palette class ("c1".."c15") or a CSS colour ("#rrggbb")
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
}

export interface Span extends Style {
  text: string;
}

// CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-byte escapes.
const ESCAPE = /\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])/g;

/** The 256-colour palette entry `n` as a class (0-15) or a CSS colour. */
export function xterm256(n: number): string | undefined {
  if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
  if (n < 16) return `c${n}`;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return hex(v, v, v);
  }
  const i = n - 16;
  const level = (x: number) => (x === 0 ? 0 : 55 + x * 40);
  return hex(level(Math.floor(i / 36)), level(Math.floor(i / 6) % 6), level(i % 6));
}

function hex(r: number, g: number, b: number): string {
  return '#' + [r, g, b].map((v) => Math.max(0, Math.min(255, v)).toString(16).padStart(2, '0')).join('');
}

/** Applies one SGR parameter list to `style`, returning the new style. */
export function applySgr(style: Style, params: string): Style {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  let s: Style = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) s = {};
    else if (c === 1) s.bold = true;
    else if (c === 2) s.dim = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 22) {
      s.bold = false;
      s.dim = false;
    } else if (c === 23) s.italic = false;
    else if (c === 24) s.underline = false;
    else if (c >= 30 && c <= 37) s.fg = `c${c - 30}`;
    else if (c >= 90 && c <= 97) s.fg = `c${c - 90 + 8}`;
    else if (c === 39) s.fg = undefined;
    else if (c >= 40 && c <= 47) s.bg = `c${c - 40}`;
    else if (c >= 100 && c <= 107) s.bg = `c${c - 100 + 8}`;
    else if (c === 49) s.bg = undefined;
    else if (c === 38 || c === 48) {
      let colour: string | undefined;
      if (codes[i + 1] === 5) {
        colour = xterm256(codes[i + 2]);
        i += 2;
      } else if (codes[i + 1] === 2) {
        const [r, g, b] = codes.slice(i + 2, i + 5);
        if ([r, g, b].every((v) => Number.isInteger(v))) colour = hex(r, g, b);
        i += 4;
      }
      if (c === 38) s.fg = colour;
      else s.bg = colour;
    }
  }
  return clean(s);
}

function clean(s: Style): Style {
  const out: Style = {};
  if (s.fg) out.fg = s.fg;
  if (s.bg) out.bg = s.bg;
  if (s.bold) out.bold = true;
  if (s.dim) out.dim = true;
  if (s.italic) out.italic = true;
  if (s.underline) out.underline = true;
  return out;
}

/** Splits a line into spans; `start` is the style carried from earlier lines. */
export function toSpans(line: string, start: Style = {}): { spans: Span[]; end: Style } {
  const spans: Span[] = [];
  let style = start;
  let last = 0;
  const push = (text: string) => {
    if (!text) return;
    const prev = spans[spans.length - 1];
    if (prev && sameStyle(prev, style)) prev.text += text;
    else spans.push({ ...style, text });
  };
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(line); m; m = ESCAPE.exec(line)) {
    push(line.slice(last, m.index));
    if (m[2] === 'm') style = applySgr(style, m[1] ?? '');
    last = ESCAPE.lastIndex;
  }
  push(line.slice(last));
  return { spans, end: style };
}

function sameStyle(a: Style, b: Style): boolean {
  return (
    a.fg === b.fg &&
    a.bg === b.bg &&
    !!a.bold === !!b.bold &&
    !!a.dim === !!b.dim &&
    !!a.italic === !!b.italic &&
    !!a.underline === !!b.underline
  );
}

/** The text without any escape sequences (for search and copying). */
export function stripAnsi(line: string): string {
  return line.replace(ESCAPE, '');
}

/** CSS classes and inline style for a span. */
export function spanAttrs(s: Style): { class: string; style: string } {
  const classes: string[] = [];
  const styles: string[] = [];
  if (s.fg) {
    if (s.fg.startsWith('#')) styles.push(`color:${s.fg}`);
    else classes.push(`fg-${s.fg}`);
  }
  if (s.bg) {
    if (s.bg.startsWith('#')) styles.push(`background:${s.bg}`);
    else classes.push(`bg-${s.bg}`);
  }
  if (s.bold) classes.push('b');
  if (s.dim) classes.push('dim');
  if (s.italic) classes.push('i');
  if (s.underline) classes.push('u');
  return { class: classes.join(' '), style: styles.join(';') };
}
