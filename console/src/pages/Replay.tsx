import { type ComponentChildren, Fragment } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { JsonView, Loading, Notice, StatusBadge } from '../components/common';
import { ONE_COLUMN, type Range, RangeFields, TraceOf, optionText, useMedia } from '../components/investigate';
import { Name, Time } from '../components/text';
import { localToIso, plural, short, visibleText } from '../format';
import { useLoad } from '../hooks';
import type { Contract, DeadLetter, Destination, QuarantinedEvent, ReplayResult } from '../types';

type Tab = 'dead-letters' | 'quarantine';
// A replay that fails again is dead-lettered again a few seconds later: the list is asked once
// more after this long, so that it shows what became of the replayed ones.
const RECHECK_MS = 5000;

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
        Deliveries that failed for good, and events a contract blocked. Select one to see its trace; replay by filter: a dry
        run shows what would be replayed, then confirm.
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

/** The list and, beside it (wide) or under the selected row (narrow), the selected item; the
 * replay controls stay in view: in the sticky side column, or stuck to the bottom of a phone.
 * The same elements in both layouts, so that a change of width keeps a dry run's result. */
function Investigation(props: {
  oneColumn: boolean;
  list: ComponentChildren;
  detail: ComponentChildren | null;
  replay: ComponentChildren;
}) {
  return (
    <div class={`investigate ${props.oneColumn ? 'one-column' : ''}`}>
      <div class="investigate-list">{props.list}</div>
      <aside class="investigate-side" aria-label="Selection and replay">
        {props.replay}
        {props.oneColumn ? null : props.detail ?? <p class="card muted select-hint">Select a message id to see its trace here.</p>}
      </aside>
    </div>
  );
}

/** Dry run first, then the real replay of exactly the same filters. */
function ReplayControls(props: {
  noun: string;
  filtersKey: string;
  run: (dryRun: boolean) => Promise<ReplayResult>;
  onReplayed: (result: ReplayResult) => void;
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
        props.onReplayed(result);
      }
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const idOf = (result: ReplayResult, id: string) => result.message_ids?.[id] ?? id;
  return (
    <section class="card stack replay" aria-labelledby={`replay-${props.noun.replace(/ /g, '-')}`}>
      <h2 id={`replay-${props.noun.replace(/ /g, '-')}`}>Replay</h2>
      <div class="button-row">
        <button type="button" class="secondary" disabled={busy} onClick={() => go(true)}>Dry run</button>
        <button type="button" disabled={busy || !current || current.replayed.length === 0} onClick={() => go(false)}>
          {current ? `Replay ${plural(current.replayed.length, props.noun)}` : 'Replay'}
        </button>
        {!current && !done ? <span class="help">Run a dry run with these filters first.</span> : null}
      </div>
      {error ? <Notice kind="error">{error}</Notice> : null}
      {current ? (
        <div role="status" data-testid="dry-run-result" class="dry-run">
          <p>
            Dry run: {plural(current.matched, 'match', 'matches')}; <strong>{plural(current.replayed.length, props.noun)}</strong> would be
            replayed{current.skipped.length ? `, ${current.skipped.length} skipped` : ''}.
          </p>
          {current.replayed.length > 0 ? (
            <MessageIds label="Would replay" ids={current.replayed.map((id) => idOf(current, id))} />
          ) : null}
          {current.skipped.length > 0 ? (
            <ul class="skips" aria-label="Skipped">
              {current.skipped.slice(0, 20).map((s) => (
                <li key={s.id}><code>{visibleText(idOf(current, s.id))}</code>: {s.reason}</li>
              ))}
              {current.skipped.length > 20 ? <li class="muted">and {current.skipped.length - 20} more</li> : null}
            </ul>
          ) : null}
        </div>
      ) : null}
      {done ? (
        <Notice kind="success">
          <span data-testid="replay-result">Replayed {plural(done.replayed.length, props.noun)}{done.skipped.length ? `; ${done.skipped.length} skipped` : ''}.</span>
          {done.replayed.length > 0 ? <> The list now shows them with their new status.</> : null}
        </Notice>
      ) : null}
    </section>
  );
}

function MessageIds(props: { label: string; ids: string[] }) {
  const shown = props.ids.slice(0, 20);
  return (
    <p class="message-ids">
      {props.label}:{' '}
      {shown.map((id, i) => <span key={i}><code>{visibleText(id)}</code>{i < shown.length - 1 ? ', ' : ''}</span>)}
      {props.ids.length > shown.length ? <span class="muted"> and {props.ids.length - shown.length} more</span> : null}
    </p>
  );
}

/** After a replay: the ids just replayed (highlighted in the list), and a second look at the
 * list a few seconds later. */
function useReplayed(reload: () => void) {
  const [replayed, setReplayed] = useState<Set<string>>(new Set());
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const onReplayed = (result: ReplayResult) => {
    setReplayed(new Set(result.replayed));
    reload();
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(reload, RECHECK_MS);
  };
  return { replayed, onReplayed };
}

function DeadLetters(props: { api: Api }) {
  const { api } = props;
  const oneColumn = useMedia(ONE_COLUMN);
  const destinations = useLoad((signal) => api.get<Destination[]>('/destinations', undefined, signal), [api]);
  const [destination, setDestination] = useState('');
  const [reason, setReason] = useState('');
  const [status, setStatus] = useState('dead_lettered');
  const [range, setRange] = useState<Range>({ from: '', to: '' });
  const [selected, setSelected] = useState<string | null>(null);
  const query = {
    destination_id: destination,
    reason,
    status,
    from: localToIso(range.from),
    to: localToIso(range.to),
    limit: 200,
  };
  const letters = useLoad((signal) => api.get<DeadLetter[]>('/dead-letters', query, signal), [api, JSON.stringify(query)]);
  const { replayed, onReplayed } = useReplayed(letters.reload);
  const replayFilters = { destination_id: destination || undefined, reason: reason || undefined, from: query.from, to: query.to };
  const names = new Map((destinations.data ?? []).map((d) => [d.id, d.name]));
  const reasons = [...new Set((letters.data ?? []).map((l) => l.reason_code))];
  const chosen = (letters.data ?? []).find((l) => l.id === selected) ?? null;
  const detail = chosen ? <DeadLetterDetail key={chosen.id} api={api} letter={chosen} destination={names.get(chosen.destination_id ?? '')} names={names} onClose={() => setSelected(null)} /> : null;

  const list = (
    <section class="card" aria-labelledby="dl-title">
      <h2 id="dl-title">Dead letters <span class="muted" data-testid="dead-letter-count">({(letters.data ?? []).length})</span></h2>
      {letters.error ? <Notice kind="error">{letters.error}</Notice> : null}
      {letters.loading && !letters.data ? <Loading /> : null}
      {letters.data && letters.data.length === 0 ? <p class="muted">No dead letters match.</p> : null}
      {letters.data && letters.data.length > 0 ? (
        <div class="table-wrap">
          <table class="investigate-table" aria-busy={letters.loading}>
            <caption class="visually-hidden">Dead letters, newest first</caption>
            <thead>
              <tr><th scope="col">When</th><th scope="col">Message id</th><th scope="col">Destination</th><th scope="col">Reason</th><th scope="col">Status</th></tr>
            </thead>
            <tbody>
              {letters.data.map((l) => (
                <Fragment key={l.id}>
                  <tr data-testid="dead-letter" class={`${selected === l.id ? 'selected' : ''} ${replayed.has(l.id) ? 'just-replayed' : ''}`}>
                    <td data-label="When" class="when"><Time iso={l.updated_at ?? l.created_at} /></td>
                    <td data-label="Message id">
                      <button type="button" class="link mono-name" aria-pressed={selected === l.id} aria-expanded={oneColumn ? selected === l.id : undefined}
                        onClick={() => setSelected(selected === l.id ? null : l.id)}>
                        <Name text={l.message_id} /><span class="visually-hidden">: show trace</span>
                      </button>
                    </td>
                    <td data-label="Destination">
                      {l.kind === 'event' ? <span class="muted">(an event: its source)</span> : <Name text={names.get(l.destination_id ?? '') ?? l.destination_id} />}
                    </td>
                    <td data-label="Reason"><strong>{l.reason_code}</strong> <span class="muted">{short(visibleText(l.reason), 90)}</span>{l.last_http_status && !l.reason.includes(`HTTP ${l.last_http_status}`) ? <span class="muted"> (HTTP {l.last_http_status})</span> : null}{l.attempts ? <span class="muted"> · {plural(l.attempts, 'attempt')}</span> : null}</td>
                    <td data-label="Status">
                      <StatusBadge value={l.status} />{l.replay_count ? <span class="muted"> ×{l.replay_count}</span> : null}
                      {replayed.has(l.id) ? <span class="muted"> just replayed</span> : null}
                    </td>
                  </tr>
                  {oneColumn && selected === l.id && detail ? (
                    <tr class="detail-row"><td colSpan={5}>{detail}</td></tr>
                  ) : null}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );

  return (
    <div class="stack">
      <form class="toolbar card" aria-label="Dead letter filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="dl-destination">Destination</label>
          <select id="dl-destination" value={destination} onChange={(e) => setDestination((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All destinations</option>
            {(destinations.data ?? []).map((d) => <option key={d.id} value={d.id}>{optionText(d.name)} ({d.type})</option>)}
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
      <Investigation
        oneColumn={oneColumn}
        list={list}
        detail={detail}
        replay={
          <ReplayControls
            noun="dead letter"
            filtersKey={JSON.stringify(replayFilters)}
            run={(dryRun) => api.post<ReplayResult>('/dead-letters/replay', { ...replayFilters, dry_run: dryRun })}
            onReplayed={(result) => {
              // Replayed letters leave "dead lettered": show every status so they stay in sight.
              if (status === 'dead_lettered' && result.replayed.length > 0) setStatus('');
              onReplayed(result);
            }}
          />
        }
      />
    </div>
  );
}

function DeadLetterDetail(props: {
  api: Api;
  letter: DeadLetter;
  destination: string | undefined;
  names: Map<string, string>;
  onClose: () => void;
}) {
  const { letter } = props;
  return (
    <section class="card stack detail" aria-labelledby="trace-title" data-testid="dead-letter-detail">
      <div class="section-head">
        <h2 id="trace-title" class="detail-title">Trace of <Name text={letter.message_id} /></h2>
        <button type="button" class="secondary small" onClick={props.onClose}>Close</button>
      </div>
      <dl class="facts">
        <dt>Destination</dt><dd><Name text={props.destination ?? letter.destination_id ?? '—'} /> {letter.destination_type ? <span class="muted">({letter.destination_type})</span> : null}</dd>
        <dt>Reason</dt><dd><strong>{letter.reason_code}</strong>: {visibleText(letter.reason)}</dd>
        <dt>Attempts</dt><dd>{letter.attempts ?? '—'}{letter.last_http_status ? ` · last HTTP ${letter.last_http_status}` : ''}</dd>
        <dt>Dead-lettered</dt><dd><Time iso={letter.created_at} />{letter.times_dead_lettered > 1 ? ` (${letter.times_dead_lettered} times)` : ''}</dd>
        <dt>Status</dt><dd><StatusBadge value={letter.status} />{letter.replayed_at ? <> · replayed <Time iso={letter.replayed_at} /></> : null}</dd>
      </dl>
      <TraceOf api={props.api} messageId={letter.message_id} destinations={props.names} />
    </section>
  );
}

function Quarantine(props: { api: Api }) {
  const { api } = props;
  const oneColumn = useMedia(ONE_COLUMN);
  const contracts = useLoad((signal) => api.get<Contract[]>('/event-contracts', undefined, signal), [api]);
  const [contract, setContract] = useState('');
  const [status, setStatus] = useState('quarantined');
  const [range, setRange] = useState<Range>({ from: '', to: '' });
  const [selected, setSelected] = useState<string | null>(null);
  const query = { contract_id: contract, status, from: localToIso(range.from), to: localToIso(range.to), limit: 200 };
  const events = useLoad((signal) => api.get<QuarantinedEvent[]>('/quarantine', query, signal), [api, JSON.stringify(query)]);
  const { replayed, onReplayed } = useReplayed(events.reload);
  const replayFilters = { contract_id: contract || undefined, from: query.from, to: query.to };
  const names = new Map((contracts.data ?? []).map((c) => [c.id, c.name]));
  const chosen = (events.data ?? []).find((q) => q.id === selected) ?? null;
  const detail = chosen ? <QuarantinedDetail key={chosen.id} api={api} held={chosen} names={names} onClose={() => setSelected(null)} /> : null;

  const list = (
    <section class="card" aria-labelledby="q-title">
      <h2 id="q-title">Quarantined events <span class="muted" data-testid="quarantine-count">({(events.data ?? []).length})</span></h2>
      {events.error ? <Notice kind="error">{events.error}</Notice> : null}
      {events.loading && !events.data ? <Loading /> : null}
      {events.data && events.data.length === 0 ? <p class="muted">No quarantined events match.</p> : null}
      {events.data && events.data.length > 0 ? (
        <div class="table-wrap">
          <table class="investigate-table" aria-busy={events.loading}>
            <caption class="visually-hidden">Quarantined events, most recently quarantined first</caption>
            <thead>
              <tr><th scope="col">Quarantined</th><th scope="col">Message id</th><th scope="col">Event</th><th scope="col">Blocked by</th><th scope="col">Status</th></tr>
            </thead>
            <tbody>
              {events.data.map((q) => (
                <Fragment key={q.id}>
                  <tr data-testid="quarantined" class={`${selected === q.id ? 'selected' : ''} ${replayed.has(q.id) ? 'just-replayed' : ''}`}>
                    <td data-label="Quarantined" class="when"><Time iso={q.quarantined_at} /></td>
                    <td data-label="Message id">
                      <button type="button" class="link mono-name" aria-pressed={selected === q.id} aria-expanded={oneColumn ? selected === q.id : undefined}
                        onClick={() => setSelected(selected === q.id ? null : q.id)}>
                        <Name text={q.message_id} /><span class="visually-hidden">: show payload and trace</span>
                      </button>
                    </td>
                    <td data-label="Event">{q.event_type}{q.event_name ? <> · <Name text={q.event_name} /></> : null}</td>
                    <td data-label="Blocked by">
                      <ul class="plain-list compact">
                        {q.reasons.slice(0, 3).map((r, i) => (
                          <li key={i}><Name text={names.get(r.contract_id) ?? r.contract_id} />: <code>{visibleText(r.field)}</code> {r.type}</li>
                        ))}
                        {q.reasons.length > 3 ? <li class="muted">and {q.reasons.length - 3} more</li> : null}
                      </ul>
                    </td>
                    <td data-label="Status">
                      <StatusBadge value={q.status} />{q.times_quarantined > 1 ? <span class="muted"> ×{q.times_quarantined}</span> : null}
                      {replayed.has(q.id) ? <span class="muted"> just replayed</span> : null}
                    </td>
                  </tr>
                  {oneColumn && selected === q.id && detail ? (
                    <tr class="detail-row"><td colSpan={5}>{detail}</td></tr>
                  ) : null}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );

  return (
    <div class="stack">
      <form class="toolbar card" aria-label="Quarantine filters" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="q-contract">Contract</label>
          <select id="q-contract" value={contract} onChange={(e) => setContract((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">All contracts</option>
            {(contracts.data ?? []).map((c) => <option key={c.id} value={c.id}>{optionText(c.name)}</option>)}
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
      <Investigation
        oneColumn={oneColumn}
        list={list}
        detail={detail}
        replay={
          <ReplayControls
            noun="event"
            filtersKey={JSON.stringify(replayFilters)}
            run={(dryRun) => api.post<ReplayResult>('/quarantine/replay', { ...replayFilters, dry_run: dryRun })}
            onReplayed={(result) => {
              if (status === 'quarantined' && result.replayed.length > 0) setStatus('');
              onReplayed(result);
            }}
          />
        }
      />
    </div>
  );
}

function QuarantinedDetail(props: { api: Api; held: QuarantinedEvent; names: Map<string, string>; onClose: () => void }) {
  const { held } = props;
  return (
    <section class="card stack detail" aria-labelledby="held-title" data-testid="quarantined-detail">
      <div class="section-head">
        <h2 id="held-title" class="detail-title">Quarantined <Name text={held.message_id} /></h2>
        <button type="button" class="secondary small" onClick={props.onClose}>Close</button>
      </div>
      <dl class="facts">
        <dt>Received</dt><dd><Time iso={held.received_at} /></dd>
        <dt>Quarantined</dt><dd><Time iso={held.quarantined_at} />{held.times_quarantined > 1 ? ` (${held.times_quarantined} times)` : ''}</dd>
        <dt>Status</dt><dd><StatusBadge value={held.status} />{held.replayed_at ? <> · replayed <Time iso={held.replayed_at} /></> : null}</dd>
      </dl>
      <h3 id="held-violations">Violations that blocked it</h3>
      <ul class="plain-list violations" aria-labelledby="held-violations">
        {held.reasons.map((r, i) => (
          <li key={i}>
            <div><code>{visibleText(r.field)}</code> <strong>{r.type}</strong></div>
            <div class="muted">
              contract <Name text={props.names.get(r.contract_id) ?? r.contract_id} />{r.contract_version ? ` v${r.contract_version}` : ''}
            </div>
            {r.message ? <div>{visibleText(r.message)}</div> : null}
            {r.expected || r.actual ? (
              <div class="muted">
                expected <code>{r.expected ? short(visibleText(r.expected), 80) : '—'}</code>, actual{' '}
                <code>{r.actual ? short(visibleText(r.actual), 80) : '—'}</code>
              </div>
            ) : null}
          </li>
        ))}
      </ul>
      <h3>Payload</h3>
      <JsonView value={held.event} label={`Payload of ${held.message_id}`} />
      <TraceOf api={props.api} messageId={held.message_id} />
    </section>
  );
}
