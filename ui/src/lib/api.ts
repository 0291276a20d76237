// The REST API client. The browser is signed in by an HttpOnly cookie (see
// `POST /api/v1/session`); every request also sends `x-hangar-ui`, without
// which the agent refuses cookie-authenticated changes (a CSRF guard).

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the agent says we are not signed in. */
let onUnauthorized: () => void = () => {};
export function whenSignedOut(handler: () => void): void {
  onUnauthorized = handler;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { 'x-hangar-ui': '1', accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'offline', 'cannot reach the agent; is it running?');
  }
  if (response.status === 401 && path !== '/session') onUnauthorized();
  if (!response.ok) {
    let code = 'http';
    let message = `${response.status} ${response.statusText}`;
    try {
      const e = await response.json();
      code = e.error?.code ?? code;
      message = e.error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(response.status, code, message);
  }
  if (response.status === 204) return undefined as T;
  const type = response.headers.get('content-type') ?? '';
  return (type.includes('json') ? response.json() : response.text()) as Promise<T>;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body ?? {});
export const del = <T>(path: string) => api<T>('DELETE', path);

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// Shapes of the API's answers (only the fields the dashboard reads).
export interface Build {
  id: string;
  repo: string;
  number: number;
  workflow_file: string;
  workflow_name: string;
  title: string;
  trigger: string;
  ref: string;
  sha: string;
  status: string;
  error: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
}

export interface Step {
  number: number;
  name: string;
  status: string;
  duration_ms: number | null;
}

export interface Annotation {
  level: string;
  message: string;
  file: string | null;
  line: number | null;
  log_line: number | null;
}

export interface Job {
  id: string;
  key: string;
  name: string;
  needs: string[];
  executor: string;
  status: string;
  reason: string | null;
  duration_ms: number | null;
  steps: Step[];
  annotations: Annotation[];
}

export interface BuildDetail extends Build {
  jobs: Job[];
}

export interface Artifact {
  name: string;
  job_id: string;
  files: number;
  size: number;
  created_at: string;
  expires_at: string;
}

/** Where a build's artifact downloads (a tar); names may hold spaces. */
export function artifactUrl(build: string, name: string): string {
  return `/api/v1/builds/${encodeURIComponent(build)}/artifacts/${encodeURIComponent(name)}`;
}

export interface Page<T> {
  items: T[];
  next?: string | null;
}

export interface Repo {
  id: string;
  full_name: string;
  public: boolean;
  description: string;
  clone_url: string;
  ssh_clone_url?: string;
  created_at: string;
}

export interface Status {
  version: string;
  url: string;
  ssh_url: string | null;
  ssh_host_key_fingerprint: string | null;
  uptime_secs: number;
  repos: number;
  you: { name: string; role: string };
}

export const FINISHED = ['success', 'failure', 'cancelled', 'interrupted', 'invalid', 'skipped'];
export const STATUSES = ['queued', 'running', ...FINISHED];
