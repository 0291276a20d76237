import { describe, expect, it } from 'vitest';
import { LogModel, parseLog, visible } from './log';

const LOG = [
  '##[step 1] Build',
  '::group::Compile',
  'cc a.c',
  'cc b.c',
  '::endgroup::',
  '\x1b[32mbuilt\x1b[0m',
  '::error file=a.c,line=3::boom',
  '##[step 2] Test',
  '::group::Unclosed',
  'inside',
  '##[step 3] After',
  'outside',
].join('\n');

describe('LogModel', () => {
  it('numbers lines and marks steps, groups and commands', () => {
    const model = parseLog(LOG + '\n');
    expect(model.lines.map((l) => [l.number, l.kind])).toEqual([
      [1, 'step'], [2, 'group'], [3, 'text'], [4, 'text'], [5, 'endgroup'], [6, 'text'],
      [7, 'command'], [8, 'step'], [9, 'group'], [10, 'text'], [11, 'step'], [12, 'text'],
    ]);
    expect(model.lines[0].title).toBe('Build');
    expect(model.lines[1].title).toBe('Compile');
  });

  it('puts lines inside their group and counts them', () => {
    const model = parseLog(LOG);
    expect(model.lines[2].group).toBe(2);
    expect(model.lines[4].group).toBe(2); // the endgroup line folds with it
    expect(model.lines[5].group).toBeUndefined();
    expect(model.groups.get(2)).toEqual({ number: 2, title: 'Compile', end: 5, lines: 2 });
  });

  it('ends a group left open at the next step', () => {
    const model = parseLog(LOG);
    expect(model.lines[9].group).toBe(9);
    expect(model.lines[11].group).toBeUndefined();
  });

  it('folds closed groups and shows open ones', () => {
    const model = parseLog(LOG);
    const shown = (open: Set<number>) => model.lines.filter((l) => visible(l, open)).map((l) => l.number);
    expect(shown(new Set())).toEqual([1, 2, 6, 7, 8, 9, 11, 12]);
    expect(shown(new Set([2]))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]);
  });

  it('searches the text without colour codes, case-insensitively', () => {
    const model = parseLog(LOG);
    expect(model.search('BUILT')).toEqual([6]);
    expect(model.search('cc')).toEqual([3, 4]);
    expect(model.search('  ')).toEqual([]);
  });

  it('builds the same model line by line as from the whole text', () => {
    const live = new LogModel();
    LOG.split('\n').forEach((l, i) => live.push(i + 1, l));
    expect(live.lines).toEqual(parseLog(LOG).lines);
  });

  it('carries colours across lines', () => {
    const model = parseLog('\x1b[31mred\nstill red\x1b[0m\nplain');
    expect(model.lines.map((l) => l.spans)).toEqual([
      [{ text: 'red', fg: 'c1' }],
      [{ text: 'still red', fg: 'c1' }],
      [{ text: 'plain' }],
    ]);
  });
});
