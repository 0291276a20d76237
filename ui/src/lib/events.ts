// The agent's event stream (`GET /api/v1/events`): one EventSource for the
// whole app. Pages subscribe to the change types they show and refetch; after
// a reconnect or a `reload` event every listener hears `reload`, since changes
// may have been missed.

export type ChangeType = 'build' | 'job' | 'step' | 'push' | 'mirror' | 'reload';
export interface Change {
  type: ChangeType;
  [key: string]: unknown;
}
type Listener = (change: Change) => void;

const TYPES: ChangeType[] = ['build', 'job', 'step', 'push', 'mirror'];
const listeners = new Set<{ types: ChangeType[]; fn: Listener }>();
let source: EventSource | undefined;
let connected = false;
let everConnected = false;
const stateListeners = new Set<(live: boolean) => void>();

function emit(change: Change) {
  for (const l of listeners) if (change.type === 'reload' || l.types.includes(change.type)) l.fn(change);
}

function setConnected(live: boolean) {
  connected = live;
  for (const fn of stateListeners) fn(live);
}

/** Opens the stream (after sign-in); harmless to call twice. */
export function connect(): void {
  if (source) return;
  source = new EventSource('/api/v1/events');
  source.addEventListener('hello', () => {
    const reconnect = everConnected;
    everConnected = true;
    setConnected(true);
    if (reconnect) emit({ type: 'reload' });
  });
  for (const type of TYPES) {
    source.addEventListener(type, (e) => {
      try {
        emit(JSON.parse((e as MessageEvent).data));
      } catch {
        emit({ type: 'reload' });
      }
    });
  }
  source.addEventListener('reload', () => emit({ type: 'reload' }));
  source.onerror = () => setConnected(false); // EventSource retries by itself
}

export function disconnect(): void {
  source?.close();
  source = undefined;
  everConnected = false;
  setConnected(false);
}

/** Calls `fn` for changes of `types` (and on reload); returns the unsubscribe. */
export function subscribe(types: ChangeType[], fn: Listener): () => void {
  const entry = { types, fn };
  listeners.add(entry);
  return () => listeners.delete(entry);
}

export function onLive(fn: (live: boolean) => void): () => void {
  stateListeners.add(fn);
  fn(connected);
  return () => stateListeners.delete(fn);
}

/** Wraps `fn` so bursts of calls run it once, `ms` after the last. */
export function debounce(fn: () => void, ms = 150): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}
