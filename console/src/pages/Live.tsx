import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, messageOf, queryString } from '../api';
import { JsonView, Loading, Notice, TraceView, onListKeys } from '../components/common';
import { formatClock } from '../format';
import { useLoad } from '../hooks';
import { followStream, type StreamStatus } from '../sse';
import { CALL_TYPES, type CanonicalEvent, type EventSource, type EventTrace } from '../types';

const MAX_EVENTS = 500;

interface LiveEntry {
  key: string;
  event: CanonicalEvent;
}

interface Filters {
  source_id: string;
  event_type: string;
  event_name: string;
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
  const [filters, setFilters] = useState<Filters>({ source_id: '', event_type: '', event_name: '' });
  const [nameDraft, setNameDraft] = useState('');
  const [events, setEvents] = useState<LiveEntry[]>([]);
  const [paused, setPaused] = useState(false);
  const [buffered, setBuffered] = useState(0);
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const [fatal, setFatal] = useState<string | null>(null);
  const [selected, setSelected] = useState<LiveEntry | null>(null);
  const pausedRef = useRef(false);
  const buffer = useRef<LiveEntry[]>([]);
  const counter = useRef(0);

  useEffect(() => {
    const controller = new AbortController();
    // New filters, new stream: the list shows only what matches them.
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
      onStatus: (next) => setStatus(next),
      onFatal: (_status, message) => setFatal(message),
      onMessage: (message) => {
        let event: CanonicalEvent;
        try {
          event = JSON.parse(message.data) as CanonicalEvent;
        } catch {
          return;
        }
        counter.current += 1;
        const entry = { key: `${counter.current}-${event.messageId}`, event };
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
            {(sources.data ?? []).map((s) => <option key={s.id} value={s.id}>{s.name}</option>)}
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
      <div class="split">
        <section class="card list-panel" aria-labelledby="live-events-title">
          <h2 id="live-events-title">Events <span class="muted">({events.length})</span></h2>
          {events.length === 0 ? (
            <p class="muted">Waiting for events… Send one with a source's snippet, or “Send test event” on the Sources page.</p>
          ) : (
            <div class="table-wrap" onKeyDown={onListKeys}>
              <table class="events">
                <caption class="visually-hidden">Live events, newest first. Choose one to see its JSON and trace.</caption>
                <thead>
                  <tr>
                    <th scope="col">Received</th>
                    <th scope="col">Type</th>
                    <th scope="col">Name</th>
                    <th scope="col">User</th>
                    <th scope="col">Source</th>
                  </tr>
                </thead>
                <tbody>
                  {events.map((entry) => {
                    const e = entry.event;
                    const label = e.event ?? e.name ?? '—';
                    return (
                      <tr key={entry.key} class={selected?.key === entry.key ? 'selected' : undefined} data-testid="live-event">
                        <td>
                          <button
                            type="button"
                            class="row-button"
                            data-row
                            aria-pressed={selected?.key === entry.key}
                            onClick={() => setSelected(entry)}
                          >
                            {formatClock(e.receivedAt)}
                            <span class="visually-hidden"> {e.type} {label}</span>
                          </button>
                        </td>
                        <td><span class={`type type-${e.type}`}>{e.type}</span></td>
                        <td>{label}</td>
                        <td>{e.userId ?? e.anonymousId ?? '—'}</td>
                        <td>{sourceNames.get(e.sourceId) ?? e.sourceId}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section class="card detail-panel" aria-labelledby="live-detail-title">
          <h2 id="live-detail-title">{selected ? `Event ${selected.event.messageId}` : 'Event details'}</h2>
          {selected ? <EventDetail key={selected.key} api={api} event={selected.event} /> : <p class="muted">Choose an event to see its JSON and its trace.</p>}
        </section>
      </div>
    </div>
  );
}

function EventDetail(props: { api: Api; event: CanonicalEvent }) {
  const { api, event } = props;
  const [trace, setTrace] = useState<EventTrace | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

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
      <div class="section-head">
        <h3>Trace</h3>
        <button type="button" class="secondary small" onClick={() => setTick((t) => t + 1)}>Refresh trace</button>
      </div>
      {error ? <Notice kind="error">{error}</Notice> : trace ? <TraceView trace={trace} /> : <Loading label="Loading the trace…" />}
      <h3>JSON</h3>
      <JsonView value={event} label={`Event ${event.messageId} as JSON`} />
    </div>
  );
}
