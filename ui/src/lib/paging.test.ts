import { describe, expect, it } from 'vitest';
import { apiPath, current, filterQuery, first, fromCursor, newer, older, pageNumber, readFilter } from './paging';

describe('filters in the URL', () => {
  it('round-trips through the query string', () => {
    const f = { repo: 'team/app', status: 'failure', before: '01J0000000000000000000000' };
    expect(readFilter(filterQuery(f))).toEqual(f);
  });

  it('leaves out empty values', () => {
    expect(filterQuery({ repo: '', status: undefined })).toBe('');
    expect(readFilter('?repo=&status=%20')).toEqual({});
  });

  it('asks the API for one page with the filter', () => {
    expect(apiPath({ repo: 'a/b', status: 'running' })).toBe('/builds?repo=a%2Fb&status=running&limit=50');
    expect(apiPath({ before: 'X' }, 10)).toBe('/builds?before=X&limit=10');
  });
});

describe('cursor trail', () => {
  it('goes older and back newer to the first page', () => {
    let t = first();
    expect(pageNumber(t)).toBe(1);
    expect(current(t)).toBeUndefined();
    t = older(t, 'B50');
    t = older(t, 'B100');
    expect(pageNumber(t)).toBe(3);
    expect(current(t)).toBe('B100');
    t = newer(t);
    expect(current(t)).toBe('B50');
    t = newer(newer(t));
    expect(pageNumber(t)).toBe(1);
    expect(current(t)).toBeUndefined();
  });

  it('starts from a cursor in a shared link', () => {
    expect(pageNumber(fromCursor('B50'))).toBe(2);
    expect(current(newer(fromCursor('B50')))).toBeUndefined();
    expect(fromCursor(undefined)).toEqual(first());
  });

  it('pages through 10,000 builds without growing past the pages visited', () => {
    let t = first();
    for (let i = 1; i < 200; i++) t = older(t, `B${i * 50}`);
    expect(pageNumber(t)).toBe(200);
    expect(current(t)).toBe('B9950');
  });
});
