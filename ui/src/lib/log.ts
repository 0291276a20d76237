// A job log as the build page shows it: numbered lines, `##[step N]` headers,
// `::group::` sections folded, and search. Lines arrive one at a time while a
// job runs, so the model is built incrementally.

import { stripAnsi, toSpans, type Span, type Style } from './ansi';

export interface Line {
  number: number;
  text: string; // as logged, escapes included
  spans: Span[];
  plain: string; // escapes stripped, for search
  kind: 'text' | 'step' | 'group' | 'endgroup' | 'command';
  title?: string; // step or group title
  group?: number; // number of the group header line this line sits in
}

export interface Group {
  number: number; // the `::group::` line
  title: string;
  end?: number; // the `::endgroup::` line, once seen
  lines: number; // lines inside
}

const STEP = /^##\[step (\d+)\] (.*)$/;
const COMMAND = /^::([a-z-]+)(?: [^:]*)?::(.*)$/;

export class LogModel {
  lines: Line[] = [];
  groups = new Map<number, Group>();
  private open?: Group;
  private style: Style = {};

  /** Adds the next line; `number` must follow the previous one. */
  push(number: number, text: string): Line {
    const plain = stripAnsi(text);
    let kind: Line['kind'] = 'text';
    let title: string | undefined;
    const step = STEP.exec(plain);
    const command = COMMAND.exec(plain);
    if (step) {
      kind = 'step';
      title = step[2];
      this.open = undefined; // a new step ends any group left open
    } else if (command?.[1] === 'group') {
      kind = 'group';
      title = command[2] || 'group';
      // Groups do not nest (as on GitHub): a new one closes the last.
      this.open = { number, title, lines: 0 };
      this.groups.set(number, this.open);
    } else if (command?.[1] === 'endgroup') {
      kind = 'endgroup';
    } else if (command && ['error', 'warning', 'notice', 'add-mask', 'debug'].includes(command[1])) {
      kind = 'command';
    }
    const { spans, end } = toSpans(text, this.style);
    this.style = end;
    const line: Line = { number, text, spans, plain, kind, title };
    if (this.open && kind !== 'group') {
      line.group = this.open.number;
      if (kind === 'endgroup') {
        this.open.end = number;
        this.open = undefined;
      } else {
        this.open.lines++;
      }
    }
    this.lines.push(line);
    return line;
  }

  /** Line numbers whose text contains `query` (case-insensitive). */
  search(query: string): number[] {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    return this.lines.filter((l) => l.plain.toLowerCase().includes(q)).map((l) => l.number);
  }
}

/** Whether a line shows, given the set of group header lines that are open. */
export function visible(line: Line, openGroups: ReadonlySet<number>): boolean {
  if (line.group === undefined) return true;
  return openGroups.has(line.group);
}

/** Parses a whole plain-text log (one line per `\n`). */
export function parseLog(text: string): LogModel {
  const model = new LogModel();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((l, i) => model.push(i + 1, l));
  return model;
}
