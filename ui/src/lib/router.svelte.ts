// History-API routing for the dashboard's few pages. The agent answers these
// paths with index.html (see agent/src/http/ui.rs), so reloads and links work.

export interface Route {
  name: string;
  params: Record<string, string>;
}

const PATTERNS: [string, RegExp][] = [
  ['overview', /^\/$/],
  ['builds', /^\/builds$/],
  ['build', /^\/builds\/(?<id>[0-9A-Za-z]+)$/],
  ['repos', /^\/repos$/],
  ['repo', /^\/repos\/(?<owner>[^/]+)\/(?<name>[^/]+)$/],
  ['pulls', /^\/pulls$/],
  ['previews', /^\/previews$/],
  ['mirrors', /^\/mirrors$/],
  ['settings', /^\/settings$/],
  ['login', /^\/login$/],
];

export function match(path: string): Route {
  for (const [name, re] of PATTERNS) {
    const m = re.exec(path);
    if (m) {
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = decodeURIComponent(v);
      return { name, params };
    }
  }
  return { name: 'missing', params: {} };
}

export const location = $state({ path: window.location.pathname, search: window.location.search });

export function navigate(to: string, replace = false): void {
  const url = new URL(to, window.location.origin);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  location.path = url.pathname;
  location.search = url.search;
  window.scrollTo(0, 0);
}

window.addEventListener('popstate', () => {
  location.path = window.location.pathname;
  location.search = window.location.search;
});

// Plain <a href="/..."> links navigate in the app; modified clicks and
// other origins keep the browser's behaviour.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = (e.target as Element | null)?.closest?.('a');
  if (!a || a.target || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('//') || href.startsWith('/api/')) return;
  e.preventDefault();
  navigate(href);
});
