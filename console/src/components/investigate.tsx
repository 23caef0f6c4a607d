// Pieces of the investigation pages (dead letters, quarantine, volume, transformation tests): a
// layout switch by viewport width, a source picker that scales to hundreds of sources, a day
// label, and an event's trace with every time named in the browser's zone.

import { useEffect, useState } from 'preact/hooks';

import type { Api } from '../api';
import { Loading, Notice, TraceView } from './common';
import { timeZone, visibleText } from '../format';
import { useDebounced, useLoad } from '../hooks';
import type { DestinationRecord, EventSource, EventTrace } from '../types';

// Below this width the list and its detail share one column (the `one-column` class).
export const ONE_COLUMN = '(max-width: 1100px)';

/** Whether the media query matches now, following changes (a rotated phone, a resized window). */
export function useMedia(query: string): boolean {
  const [matches, setMatches] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const list = window.matchMedia(query);
    const onChange = () => setMatches(list.matches);
    onChange();
    list.addEventListener('change', onChange);
    return () => list.removeEventListener('change', onChange);
  }, [query]);
  return matches;
}

// Sources shown in the picker at once: with hundreds, the search narrows them server-side.
const PICKER_PAGE = 50;

/** "All sources" or one source, found by searching its name (the API's `q`), so that a workspace
 * with hundreds of sources stays usable. */
export function SourcePicker(props: { api: Api; id: string; value: string; onChange: (sourceId: string) => void }) {
  const [search, setSearch] = useState('');
  const q = useDebounced(search.trim());
  const sources = useLoad(
    (signal) => props.api.get<EventSource[]>('/event-keys', { q, limit: PICKER_PAGE }, signal),
    [props.api, q],
  );
  const found = sources.data ?? [];
  // The chosen source stays an option even when the search no longer finds it.
  const chosen = props.value && !found.some((s) => s.id === props.value) ? [{ id: props.value, name: props.value }] : [];
  return (
    <div class="source-picker">
      <div class="field">
        <label for={`${props.id}-search`}>Find a source</label>
        <input id={`${props.id}-search`} type="search" value={search} maxLength={200} placeholder="name"
          onInput={(e) => setSearch((e.currentTarget as HTMLInputElement).value)} />
      </div>
      <div class="field">
        <label for={props.id}>Source</label>
        <select id={props.id} value={props.value} onChange={(e) => props.onChange((e.currentTarget as HTMLSelectElement).value)}>
          <option value="">All sources</option>
          {[...chosen, ...found].map((s) => (
            <option key={s.id} value={s.id}>{optionText(s.name)}</option>
          ))}
        </select>
        {sources.error ? <span class="help" role="alert">{sources.error}</span> : null}
      </div>
    </div>
  );
}

/** An option's text: control characters escaped, cut to a length a select can show. */
export function optionText(name: string, length = 60): string {
  const shown = visibleText(name);
  return shown.length > length ? `${shown.slice(0, length - 1)}…` : shown;
}

/** "From" and "To" of a date filter, labelled with the zone their values are read in. */
export function RangeFields(props: { prefix: string; range: Range; onChange: (range: Range) => void }) {
  const zone = timeZone();
  return (
    <>
      <div class="field">
        <label for={`${props.prefix}-from`}>From <span class="muted">({zone})</span></label>
        <input id={`${props.prefix}-from`} type="datetime-local" value={props.range.from}
          onInput={(e) => props.onChange({ ...props.range, from: (e.currentTarget as HTMLInputElement).value })} />
      </div>
      <div class="field">
        <label for={`${props.prefix}-to`}>To <span class="muted">({zone})</span></label>
        <input id={`${props.prefix}-to`} type="datetime-local" value={props.range.to}
          onInput={(e) => props.onChange({ ...props.range, to: (e.currentTarget as HTMLInputElement).value })} />
      </div>
    </>
  );
}

export interface Range {
  from: string;
  to: string;
}

/** A calendar day in the browser's zone (a daily bucket starts at its midnight). */
export function Day(props: { time: number }) {
  const date = new Date(props.time);
  const iso = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
  return (
    <time dateTime={iso} title={`${iso}, from midnight ${timeZone()}`}>
      {date.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })}
    </time>
  );
}

// Traces already shown, by messageId: one shown again (another layout, another selection) appears
// at once while it is asked for again.
const shownTraces = new Map<string, EventTrace>();

/** An event's trace, loaded on demand; every stage's time in the browser's zone (UTC on hover). */
export function TraceOf(props: { api: Api; messageId: string; destinations?: Map<string, string> }) {
  const trace = useLoad(
    (signal) => props.api.get<EventTrace>(`/events/${encodeURIComponent(props.messageId)}/trace`, undefined, signal),
    [props.api, props.messageId],
  );
  // The loader keeps the last answer while another loads: only this event's trace is shown.
  const loaded = trace.data && trace.data.message_id === props.messageId ? trace.data : null;
  if (loaded) shownTraces.set(props.messageId, loaded);
  const shown = loaded ?? shownTraces.get(props.messageId);
  return (
    <div class="stack trace-of">
      <div class="section-head">
        <h3>Trace</h3>
        <button type="button" class="secondary small" onClick={trace.reload} disabled={trace.loading}>Refresh trace</button>
      </div>
      {trace.error ? <Notice kind="error">{trace.error}</Notice> : shown ? <TraceView trace={shown} destinations={props.destinations} /> : <Loading label="Loading the trace…" />}
    </div>
  );
}

// Destinations' names by id, once asked for: a trace names the destinations it concerns by id.
const destinationNames = new Map<string, string>();

/** The names of the destinations `trace` names, asked for once each (a deleted one keeps its
 * id), so a trace opened where no list of destinations is at hand (Live) still names them. */
export function useDestinationNames(api: Api, trace: EventTrace | null): Map<string, string> {
  const [, setAnswered] = useState(0);
  const ids = new Set<string>();
  for (const stage of trace?.stages ?? []) {
    if (stage.destination_id && !destinationNames.has(stage.destination_id)) ids.add(stage.destination_id);
  }
  const missing = [...ids].sort().join(',');
  useEffect(() => {
    if (!missing) return;
    const controller = new AbortController();
    const asked = missing.split(',').map((id) =>
      api
        .get<DestinationRecord>(`/destinations/${encodeURIComponent(id)}`, undefined, controller.signal)
        .then((destination) => { destinationNames.set(id, destination.name); })
        .catch(() => undefined),
    );
    void Promise.all(asked).then(() => { if (!controller.signal.aborted) setAnswered((n) => n + 1); });
    return () => controller.abort();
  }, [api, missing]);
  return destinationNames;
}
