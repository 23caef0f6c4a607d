import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, messageOf, queryString } from '../api';
import { JsonView, Loading, Notice, StatusBadge, TraceView, onListKeys } from '../components/common';
import { Name } from '../components/text';
import { NameOption } from '../components/lists';
import { formatClock, timeZone } from '../format';
import { useLoad } from '../hooks';
import { useDestinationNames } from '../components/investigate';
import { takeLiveFilters, type LiveFilters as Filters } from '../navigation';
import { followStream, type SseMessage, type StreamStatus } from '../sse';
import { CALL_TYPES, type CanonicalEvent, type EventSource, type EventTrace } from '../types';

const MAX_EVENTS = 500;

/** What became of an event (the stream's `outcome` events; a plain message is a stored one). */
type Outcome = 'stored' | 'blocked' | 'duplicate' | 'suppressed' | 'dead_lettered' | 'dropped' | 'mapped';

interface LiveEntry {
  key: string;
  event: CanonicalEvent;
  status: Outcome;
  reason: string | null;
}

/** An entry of the stream: a stored event's message, or an `outcome` event with its reason. */
function entryOf(message: SseMessage): Omit<LiveEntry, 'key'> | null {
  try {
    const data = JSON.parse(message.data) as Record<string, unknown>;
    if (message.event !== 'outcome') return { event: data as unknown as CanonicalEvent, status: 'stored', reason: null };
    return {
      event: data.event as CanonicalEvent,
      status: data.status as Outcome,
      reason: typeof data.reason === 'string' ? data.reason : null,
    };
  } catch {
    return null;
  }
}

const STATUS_TEXT: Record<StreamStatus, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  stopped: 'Stopped',
  error: 'Refused',
};

export function LivePage(props: { api: Api }) {
  const { api } = props;
  const sources = useLoad((signal) => api.get<EventSource[]>('/event-keys', undefined, signal), [api]);
  const [filters, setFilters] = useState<Filters>(() => ({
    source_id: '',
    event_type: '',
    event_name: '',
    ...takeLiveFilters(),
  }));
  const [nameDraft, setNameDraft] = useState(filters.event_name);
  const [events, setEvents] = useState<LiveEntry[]>([]);
  const [paused, setPaused] = useState(false);
  const [buffered, setBuffered] = useState(0);
  const [status, setStatus] = useState<StreamStatus>('connecting');
  // Why the stream is reconnecting, when the server said (too many streams open, say).
  const [statusDetail, setStatusDetail] = useState<string | null>(null);
  const [fatal, setFatal] = useState<string | null>(null);
  const [selected, setSelected] = useState<LiveEntry | null>(null);
  const pausedRef = useRef(false);
  const buffer = useRef<LiveEntry[]>([]);
  const counter = useRef(0);

  useEffect(() => {
    const controller = new AbortController();
    // New filters, new stream: it starts with the latest matching events (the server's
    // backlog), so the list is re-queried rather than emptied.
    setFatal(null);
    setEvents([]);
    setSelected(null);
    buffer.current = [];
    setBuffered(0);
    const url = api.workspacePath('/events/live') + queryString({ ...filters });
    void followStream({
      url,
      token: api.token,
      signal: controller.signal,
      onStatus: (next, detail) => {
        setStatus(next);
        setStatusDetail(next === 'reconnecting' && detail ? detail : null);
      },
      onFatal: (_status, message) => setFatal(message),
      onMessage: (message) => {
        const seen = entryOf(message);
        if (!seen || !seen.event) return;
        counter.current += 1;
        const entry = { ...seen, key: `${counter.current}-${seen.event.messageId}` };
        if (pausedRef.current) {
          buffer.current = [entry, ...buffer.current].slice(0, MAX_EVENTS);
          setBuffered(buffer.current.length);
        } else {
          setEvents((list) => [entry, ...list].slice(0, MAX_EVENTS));
        }
      },
    });
    return () => controller.abort();
  }, [api, filters]);

  const togglePause = () => {
    if (pausedRef.current) {
      const waiting = buffer.current;
      buffer.current = [];
      setBuffered(0);
      setEvents((list) => [...waiting, ...list].slice(0, MAX_EVENTS));
    }
    pausedRef.current = !pausedRef.current;
    setPaused(pausedRef.current);
  };

  const clear = () => {
    setEvents([]);
    buffer.current = [];
    setBuffered(0);
    setSelected(null);
  };

  const sourceNames = new Map((sources.data ?? []).map((s) => [s.id, s.name]));
  const setFilter = (field: keyof Filters, value: string) => {
    setFilters((current) => ({ ...current, [field]: value }));
  };

  return (
    <div class="stack">
      <form
        class="toolbar card"
        aria-label="Live stream filters"
        onSubmit={(e) => { e.preventDefault(); setFilter('event_name', nameDraft.trim()); }}
      >
        <div class="field">
          <label for="live-source">Source</label>
          <select id="live-source" value={filters.source_id} onChange={(e) => setFilter('source_id', (e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All sources</option>
            {(sources.data ?? []).map((s) => <NameOption key={s.id} value={s.id} name={s.name} />)}
          </select>
        </div>
        <div class="field">
          <label for="live-type">Type</label>
          <select id="live-type" value={filters.event_type} onChange={(e) => setFilter('event_type', (e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All types</option>
            {CALL_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="live-name">Event or page name</label>
          <input id="live-name" value={nameDraft} placeholder="Order Completed" onInput={(e) => setNameDraft((e.currentTarget as HTMLInputElement).value)} />
        </div>
        <button type="submit" class="secondary">Apply name</button>
        <div class="toolbar-end">
          <span class={`live-status live-${paused ? 'paused' : status}`} role="status" aria-live="polite" data-testid="live-status">
            {paused ? `Paused${buffered ? ` · ${buffered} new` : ''}` : STATUS_TEXT[status]}
          </span>
          <button type="button" onClick={togglePause} aria-pressed={paused}>{paused ? 'Resume' : 'Pause'}</button>
          <button type="button" class="secondary" onClick={clear}>Clear</button>
        </div>
      </form>
      {fatal ? <Notice kind="error">The stream was refused: {fatal}</Notice> : null}
      {!fatal && statusDetail ? <Notice kind="info">Reconnecting: {statusDetail}</Notice> : null}
      <div class="split">
        <section class="card list-panel" aria-labelledby="live-events-title">
          <h2 id="live-events-title">Events <span class="muted">({events.length})</span></h2>
          {events.length === 0 ? (
            <p class="muted">No events in the last hour{filters.source_id || filters.event_type || filters.event_name ? ' match these filters' : ''}. Waiting for events… Send one with a source's snippet, or “Send test event” on the Sources page.</p>
          ) : (
            <div class="table-wrap" onKeyDown={onListKeys}>
              <table class="events">
                <caption class="visually-hidden">Live events, newest first, with what became of each. Choose one to see its JSON and trace.</caption>
                <thead>
                  <tr>
                    <th scope="col">Received <span class="muted">({timeZone()})</span></th>
                    <th scope="col">Type and name</th>
                    <th scope="col">Outcome</th>
                    <th scope="col" class="wide-only">User</th>
                    <th scope="col" class="wide-only">Source</th>
                  </tr>
                </thead>
                <tbody>
                  {events.map((entry) => {
                    const e = entry.event;
                    // A webhook source's raw request (outcome `mapped`) has no name of its own.
                    const label = e.event ?? e.name ?? ((e.type as string) === 'webhook_request' ? 'webhook request' : '—');
                    return (
                      <tr key={entry.key} class={selected?.key === entry.key ? 'selected' : undefined} data-testid="live-event" data-status={entry.status}>
                        <td>
                          <button
                            type="button"
                            class="row-button"
                            data-row
                            aria-pressed={selected?.key === entry.key}
                            onClick={() => setSelected(entry)}
                          >
                            <span title={new Date(e.receivedAt).toISOString().replace('T', ' ').replace('Z', ' UTC')}>{formatClock(e.receivedAt)}</span>
                            <span class="visually-hidden"> {e.type} {label} {entry.status}</span>
                          </button>
                        </td>
                        <td class="type-and-name"><span class={`type type-${e.type}`}>{e.type}</span> <Name text={label} /></td>
                        <td>
                          <StatusBadge value={entry.status} />
                          {entry.reason ? <Name class="outcome-reason muted" text={entry.reason} /> : null}
                        </td>
                        <td class="wide-only"><Name text={e.userId ?? e.anonymousId ?? '—'} /></td>
                        <td class="wide-only"><Name text={sourceNames.get(e.sourceId) ?? e.sourceId} /></td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section class="card detail-panel" aria-labelledby="live-detail-title">
          <h2 id="live-detail-title"><Name text={selected ? `Event ${selected.event.messageId}` : 'Event details'} /></h2>
          {selected ? <EventDetail key={selected.key} api={api} entry={selected} /> : <p class="muted">Choose an event to see its JSON and its trace.</p>}
        </section>
      </div>
    </div>
  );
}

function EventDetail(props: { api: Api; entry: LiveEntry }) {
  const { api, entry } = props;
  const { event } = entry;
  const [trace, setTrace] = useState<EventTrace | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const destinations = useDestinationNames(api, trace);

  useEffect(() => {
    const controller = new AbortController();
    setError(null);
    api
      .get<EventTrace>(`/events/${encodeURIComponent(event.messageId)}/trace`, undefined, controller.signal)
      .then((t) => setTrace(t))
      .catch((err) => { if (!controller.signal.aborted) setError(messageOf(err)); });
    return () => controller.abort();
  }, [api, event.messageId, tick]);

  return (
    <div class="stack">
      <p data-testid="live-outcome">
        <StatusBadge value={entry.status} /> {entry.reason ?? (entry.status === 'stored' ? 'Stored and routed.' : '')}
      </p>
      <div class="section-head">
        <h3>Trace</h3>
        <button type="button" class="secondary small" onClick={() => setTick((t) => t + 1)}>Refresh trace</button>
      </div>
      {error ? <Notice kind="error">{error}</Notice> : trace ? <TraceView trace={trace} destinations={destinations} /> : <Loading label="Loading the trace…" />}
      <h3>JSON</h3>
      <JsonView value={event} label={`Event ${event.messageId} as JSON`} />
    </div>
  );
}
