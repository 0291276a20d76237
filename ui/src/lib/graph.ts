// The jobs of a build laid out by their `needs`: column 0 holds jobs that need
// nothing, column n jobs whose longest chain of needs is n long.

export interface Node {
  key: string;
  needs: string[];
}

/** Column of each job key; unknown needs are ignored and cycles cut. */
export function columns<T extends Node>(jobs: T[]): T[][] {
  const byKey = new Map(jobs.map((j) => [j.key, j]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const walk = (key: string): number => {
    const known = depth.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) return 0;
    visiting.add(key);
    const job = byKey.get(key);
    let d = 0;
    for (const need of job?.needs ?? []) if (byKey.has(need)) d = Math.max(d, walk(need) + 1);
    visiting.delete(key);
    depth.set(key, d);
    return d;
  };
  const out: T[][] = [];
  for (const job of jobs) {
    const d = walk(job.key);
    (out[d] ??= []).push(job);
  }
  return out.filter(Boolean);
}
