import { useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { Loading, Notice, StatusBadge, TraceView } from '../components/common';
import { formatTime, localToIso, plural, short } from '../format';
import { useLoad } from '../hooks';
import type { Contract, DeadLetter, Destination, EventTrace, QuarantinedEvent, ReplayResult } from '../types';

type Tab = 'dead-letters' | 'quarantine';

export function ReplayPage(props: { api: Api }) {
  const [tab, setTab] = useState<Tab>('dead-letters');
  const tabs: { id: Tab; label: string }[] = [
    { id: 'dead-letters', label: 'Dead letters' },
    { id: 'quarantine', label: 'Quarantine' },
  ];
  const onKeys = (event: KeyboardEvent) => {
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
    event.preventDefault();
    const next = tab === 'dead-letters' ? 'quarantine' : 'dead-letters';
    setTab(next);
    (event.currentTarget as HTMLElement).querySelector<HTMLElement>(`#tab-${next}`)?.focus();
  };
  return (
    <div class="stack">
      <p class="lead">
        Deliveries that failed for good, and events a contract blocked. Replay by filter: a dry run shows what would be
        replayed, then confirm.
      </p>
      <div role="tablist" aria-label="Failed events" class="tabs" onKeyDown={onKeys}>
        {tabs.map((t) => (
          <button
            key={t.id}
            id={`tab-${t.id}`}
            type="button"
            role="tab"
            aria-selected={tab === t.id}
            aria-controls={`panel-${t.id}`}
            tabIndex={tab === t.id ? 0 : -1}
            onClick={() => setTab(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === 'dead-letters' ? <DeadLetters api={props.api} /> : <Quarantine api={props.api} />}
      </div>
    </div>
  );
}

interface Range {
  from: string;
  to: string;
}

function RangeFields(props: { prefix: string; range: Range; onChange: (range: Range) => void }) {
  return (
    <>
      <div class="field">
        <label for={`${props.prefix}-from`}>From</label>
        <input id={`${props.prefix}-from`} type="datetime-local" value={props.range.from} onInput={(e) => props.onChange({ ...props.range, from: (e.currentTarget as HTMLInputElement).value })} />
      </div>
      <div class="field">
        <label for={`${props.prefix}-to`}>To</label>
        <input id={`${props.prefix}-to`} type="datetime-local" value={props.range.to} onInput={(e) => props.onChange({ ...props.range, to: (e.currentTarget as HTMLInputElement).value })} />
      </div>
    </>
  );
}

/** Dry run first, then the real replay of exactly the same filters. */
function ReplayControls(props: {
  noun: string;
  filtersKey: string;
  run: (dryRun: boolean) => Promise<ReplayResult>;
  onReplayed: () => void;
}) {
  const [dry, setDry] = useState<{ key: string; result: ReplayResult } | null>(null);
  const [done, setDone] = useState<ReplayResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const current = dry && dry.key === props.filtersKey ? dry.result : null;

  const go = async (dryRun: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const result = await props.run(dryRun);
      if (dryRun) {
        setDry({ key: props.filtersKey, result });
        setDone(null);
      } else {
        setDry(null);
        setDone(result);
        props.onReplayed();
      }
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card stack replay" aria-labelledby={`replay-${props.noun}`}>
      <h2 id={`replay-${props.noun}`}>Replay</h2>
      <div class="button-row">
        <button type="button" class="secondary" disabled={busy} onClick={() => go(true)}>Dry run</button>
        <button type="button" disabled={busy || !current || current.replayed.length === 0} onClick={() => go(false)}>
          {current ? `Replay ${plural(current.replayed.length, props.noun)}` : 'Replay'}
        </button>
        {!current ? <span class="help">Run a dry run with these filters first.</span> : null}
      </div>
      {error ? <Notice kind="error">{error}</Notice> : null}
      {current ? (
        <div role="status" data-testid="dry-run-result">
          <p>
            Dry run: {plural(current.matched, 'match', 'matches')}; <strong>{plural(current.replayed.length, props.noun)}</strong> would be
            replayed{current.skipped.length ? `, ${current.skipped.length} skipped` : ''}.
          </p>
          {current.skipped.length > 0 ? (
            <ul class="skips">{current.skipped.slice(0, 20).map((s) => <li key={s.id}><code>{s.id}</code>: {s.reason}</li>)}</ul>
          ) : null}
        </div>
      ) : null}
      {done ? (
        <Notice kind="success">
          <span data-testid="replay-result">Replayed {plural(done.replayed.length, props.noun)}{done.skipped.length ? `; ${done.skipped.length} skipped` : ''}.</span>
        </Notice>
      ) : null}
    </section>
  );
}

function DeadLetters(props: { api: Api }) {
  const { api } = props;
  const destinations = useLoad((signal) => api.get<Destination[]>('/destinations', undefined, signal), [api]);
  const [destination, setDestination] = useState('');
  const [reason, setReason] = useState('');
  const [status, setStatus] = useState('dead_lettered');
  const [range, setRange] = useState<Range>({ from: '', to: '' });
  const [traceOf, setTraceOf] = useState<string | null>(null);
  const query = {
    destination_id: destination,
    reason,
    status,
    from: localToIso(range.from),
    to: localToIso(range.to),
    limit: 200,
  };
  const letters = useLoad((signal) => api.get<DeadLetter[]>('/dead-letters', query, signal), [api, JSON.stringify(query)]);
  const replayFilters = { destination_id: destination || undefined, reason: reason || undefined, from: query.from, to: query.to };
  const names = new Map((destinations.data ?? []).map((d) => [d.id, d.name]));
  const reasons = [...new Set((letters.data ?? []).map((l) => l.reason_code))];

  return (
    <div class="stack">
      <form class="toolbar card" aria-label="Dead letter filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="dl-destination">Destination</label>
          <select id="dl-destination" value={destination} onChange={(e) => setDestination((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All destinations</option>
            {(destinations.data ?? []).map((d) => <option key={d.id} value={d.id}>{d.name} ({d.type})</option>)}
          </select>
        </div>
        <div class="field">
          <label for="dl-reason">Reason code</label>
          <input id="dl-reason" list="dl-reasons" value={reason} placeholder="any" onChange={(e) => setReason((e.currentTarget as HTMLInputElement).value.trim())} />
          <datalist id="dl-reasons">{['retries_exhausted', 'http_error', 'transformation_error', ...reasons].filter((r, i, all) => all.indexOf(r) === i).map((r) => <option key={r} value={r} />)}</datalist>
        </div>
        <div class="field">
          <label for="dl-status">Status</label>
          <select id="dl-status" value={status} onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value)}>
            <option value="dead_lettered">dead lettered</option>
            <option value="replayed">replayed</option>
            <option value="">any</option>
          </select>
        </div>
        <RangeFields prefix="dl" range={range} onChange={setRange} />
        <div class="toolbar-end"><button type="button" class="secondary" onClick={letters.reload}>Refresh</button></div>
      </form>
      {letters.error ? <Notice kind="error">{letters.error}</Notice> : null}
      {letters.loading && !letters.data ? <Loading /> : null}
      <section class="card" aria-labelledby="dl-title">
        <h2 id="dl-title">Dead letters <span class="muted" data-testid="dead-letter-count">({(letters.data ?? []).length})</span></h2>
        {letters.data && letters.data.length === 0 ? <p class="muted">No dead letters match.</p> : null}
        {letters.data && letters.data.length > 0 ? (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Dead letters, newest first</caption>
              <thead>
                <tr><th scope="col">When</th><th scope="col">Message id</th><th scope="col">Destination</th><th scope="col">Reason</th><th scope="col" class="num">Attempts</th><th scope="col">Status</th></tr>
              </thead>
              <tbody>
                {letters.data.map((l) => (
                  <tr key={l.id} data-testid="dead-letter">
                    <td>{formatTime(l.created_at)}</td>
                    <td>
                      <button type="button" class="link" aria-pressed={traceOf === l.message_id} onClick={() => setTraceOf(traceOf === l.message_id ? null : l.message_id)}>
                        {l.message_id}<span class="visually-hidden">: show trace</span>
                      </button>
                    </td>
                    <td>{names.get(l.destination_id) ?? l.destination_id}</td>
                    <td><strong>{l.reason_code}</strong> <span class="muted">{short(l.reason, 90)}</span>{l.last_http_status ? <span class="muted"> (HTTP {l.last_http_status})</span> : null}</td>
                    <td class="num">{l.attempts ?? '—'}</td>
                    <td><StatusBadge value={l.status} />{l.replay_count ? <span class="muted"> ×{l.replay_count}</span> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </section>
      {traceOf ? <TracePanel key={traceOf} api={api} messageId={traceOf} /> : null}
      <ReplayControls
        noun="dead letter"
        filtersKey={JSON.stringify(replayFilters)}
        run={(dryRun) => api.post<ReplayResult>('/dead-letters/replay', { ...replayFilters, dry_run: dryRun })}
        onReplayed={letters.reload}
      />
    </div>
  );
}

function Quarantine(props: { api: Api }) {
  const { api } = props;
  const contracts = useLoad((signal) => api.get<Contract[]>('/event-contracts', undefined, signal), [api]);
  const [contract, setContract] = useState('');
  const [status, setStatus] = useState('quarantined');
  const [range, setRange] = useState<Range>({ from: '', to: '' });
  const query = { contract_id: contract, status, from: localToIso(range.from), to: localToIso(range.to), limit: 200 };
  const events = useLoad((signal) => api.get<QuarantinedEvent[]>('/quarantine', query, signal), [api, JSON.stringify(query)]);
  const replayFilters = { contract_id: contract || undefined, from: query.from, to: query.to };
  const names = new Map((contracts.data ?? []).map((c) => [c.id, c.name]));

  return (
    <div class="stack">
      <form class="toolbar card" aria-label="Quarantine filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="q-contract">Contract</label>
          <select id="q-contract" value={contract} onChange={(e) => setContract((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All contracts</option>
            {(contracts.data ?? []).map((c) => <option key={c.id} value={c.id}>{c.name}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="q-status">Status</label>
          <select id="q-status" value={status} onChange={(e) => setStatus((e.currentTarget as HTMLSelectElement).value)}>
            <option value="quarantined">quarantined</option>
            <option value="replayed">replayed</option>
            <option value="">any</option>
          </select>
        </div>
        <RangeFields prefix="q" range={range} onChange={setRange} />
        <div class="toolbar-end"><button type="button" class="secondary" onClick={events.reload}>Refresh</button></div>
      </form>
      {events.error ? <Notice kind="error">{events.error}</Notice> : null}
      {events.loading && !events.data ? <Loading /> : null}
      <section class="card" aria-labelledby="q-title">
        <h2 id="q-title">Quarantined events <span class="muted">({(events.data ?? []).length})</span></h2>
        {events.data && events.data.length === 0 ? <p class="muted">No quarantined events match.</p> : null}
        {events.data && events.data.length > 0 ? (
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Quarantined events, most recently quarantined first</caption>
              <thead>
                <tr><th scope="col">Quarantined</th><th scope="col">Message id</th><th scope="col">Event</th><th scope="col">Blocked by</th><th scope="col">Status</th></tr>
              </thead>
              <tbody>
                {events.data.map((q) => (
                  <tr key={q.id}>
                    <td>{formatTime(q.quarantined_at)}</td>
                    <td><code>{q.message_id}</code></td>
                    <td>{q.event_type}{q.event_name ? ` · ${q.event_name}` : ''}</td>
                    <td>
                      <ul class="plain-list compact">
                        {q.reasons.slice(0, 3).map((r, i) => (
                          <li key={i}>{names.get(r.contract_id) ?? r.contract_id}: <code>{r.field}</code> {r.type}</li>
                        ))}
                        {q.reasons.length > 3 ? <li class="muted">and {q.reasons.length - 3} more</li> : null}
                      </ul>
                    </td>
                    <td><StatusBadge value={q.status} />{q.times_quarantined > 1 ? <span class="muted"> ×{q.times_quarantined}</span> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </section>
      <ReplayControls
        noun="event"
        filtersKey={JSON.stringify(replayFilters)}
        run={(dryRun) => api.post<ReplayResult>('/quarantine/replay', { ...replayFilters, dry_run: dryRun })}
        onReplayed={events.reload}
      />
    </div>
  );
}

function TracePanel(props: { api: Api; messageId: string }) {
  const trace = useLoad(
    (signal) => props.api.get<EventTrace>(`/events/${encodeURIComponent(props.messageId)}/trace`, undefined, signal),
    [props.api, props.messageId],
  );
  return (
    <section class="card" aria-labelledby="trace-title">
      <div class="section-head">
        <h2 id="trace-title">Trace of {props.messageId}</h2>
        <button type="button" class="secondary small" onClick={trace.reload}>Refresh</button>
      </div>
      {trace.error ? <Notice kind="error">{trace.error}</Notice> : trace.data ? <TraceView trace={trace.data} /> : <Loading />}
    </section>
  );
}
