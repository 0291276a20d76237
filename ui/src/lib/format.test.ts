import { describe, expect, it } from 'vitest';
import { ago, bytes, duration, expires, percent, shortRef, shortSha } from './format';
import { columns } from './graph';

describe('format', () => {
  it('formats durations', () => {
    expect(duration(null)).toBe('–');
    expect(duration(400)).toBe('0.4s');
    expect(duration(5_000)).toBe('5s');
    expect(duration(65_000)).toBe('1m 05s');
    expect(duration(3_725_000)).toBe('1h 02m');
  });

  it('formats sizes', () => {
    expect(bytes(512)).toBe('512 B');
    expect(bytes(1536)).toBe('1.5 KiB');
    expect(bytes(50 * 1024 ** 3)).toBe('50 GiB');
    expect(bytes(undefined)).toBe('–');
  });

  it('says when something expires', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(expires('2026-01-04T13:00:00Z', now)).toBe('expires in 3 d');
    expect(expires('2026-01-01T17:30:00Z', now)).toBe('expires in 5 h');
    expect(expires('2026-01-01T12:12:30Z', now)).toBe('expires in 12 min');
    expect(expires('2026-01-01T12:00:20Z', now)).toBe('expires in 1 min');
    expect(expires('2026-01-01T12:00:00Z', now)).toBe('expired');
    expect(expires('2025-12-31T12:00:00Z', now)).toBe('expired');
    expect(expires(null, now)).toBe('–');
    expect(expires('soon', now)).toBe('–');
  });

  it('says how long ago', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(ago('2026-01-01T11:59:55Z', now)).toBe('just now');
    expect(ago('2026-01-01T11:55:00Z', now)).toBe('5 min ago');
    expect(ago('2026-01-01T09:00:00Z', now)).toBe('3 h ago');
    expect(ago('2025-12-30T12:00:00Z', now)).toBe('2 d ago');
    expect(ago(null, now)).toBe('–');
    expect(ago('not a time', now)).toBe('–');
  });

  it('shortens refs, commits and ratios', () => {
    expect(shortRef('refs/heads/main')).toBe('main');
    expect(shortRef('refs/tags/v1.0')).toBe('v1.0');
    expect(shortSha('0123456789abcdef')).toBe('01234567');
    expect(percent(1, 4)).toBe('25%');
    expect(percent(1, 0)).toBe('–');
  });
});

describe('job graph', () => {
  it('puts jobs in columns by their longest chain of needs', () => {
    const jobs = [
      { key: 'deploy', needs: ['test', 'lint'] },
      { key: 'build', needs: [] },
      { key: 'test', needs: ['build'] },
      { key: 'lint', needs: [] },
    ];
    expect(columns(jobs).map((c) => c.map((j) => j.key))).toEqual([['build', 'lint'], ['test'], ['deploy']]);
  });

  it('survives unknown needs and cycles', () => {
    const jobs = [
      { key: 'a', needs: ['b', 'missing'] },
      { key: 'b', needs: ['a'] },
    ];
    expect(columns(jobs).flat().length).toBe(2);
  });
});
