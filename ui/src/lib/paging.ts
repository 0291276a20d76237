// Cursor paging of the builds list (the API pages backwards by build id with
// `before`) and the filters, both kept in the page's URL query so a reload or
// a shared link shows the same page.

export interface BuildFilter {
  repo?: string;
  status?: string;
  before?: string;
}

export const PAGE_SIZE = 50;

/** Reads the filter from a URL query string (`?repo=a/b&status=failure`). */
export function readFilter(search: string): BuildFilter {
  const q = new URLSearchParams(search);
  const f: BuildFilter = {};
  for (const key of ['repo', 'status', 'before'] as const) {
    const v = q.get(key)?.trim();
    if (v) f[key] = v;
  }
  return f;
}

/** The query string for the dashboard URL (empty values left out). */
export function filterQuery(f: BuildFilter): string {
  const q = new URLSearchParams();
  for (const key of ['repo', 'status', 'before'] as const) {
    const v = f[key];
    if (v) q.set(key, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The API path for one page of builds. */
export function apiPath(f: BuildFilter, limit = PAGE_SIZE): string {
  const q = new URLSearchParams();
  if (f.repo) q.set('repo', f.repo);
  if (f.status) q.set('status', f.status);
  if (f.before) q.set('before', f.before);
  q.set('limit', String(limit));
  return `/builds?${q}`;
}

/**
 * The trail of cursors that led to the current page, so "newer" can go back
 * without the API paging forwards. `trail[i]` is the `before` of page i + 1;
 * page 1 has no cursor.
 */
export interface Trail {
  cursors: (string | undefined)[];
}

export function first(): Trail {
  return { cursors: [undefined] };
}

export function older(t: Trail, next: string): Trail {
  return { cursors: [...t.cursors, next] };
}

export function newer(t: Trail): Trail {
  return t.cursors.length > 1 ? { cursors: t.cursors.slice(0, -1) } : t;
}

export function current(t: Trail): string | undefined {
  return t.cursors[t.cursors.length - 1];
}

export function pageNumber(t: Trail): number {
  return t.cursors.length;
}

/** The trail for a page opened straight from a URL with `before`. */
export function fromCursor(before: string | undefined): Trail {
  return before ? { cursors: [undefined, before] } : first();
}
