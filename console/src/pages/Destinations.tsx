import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, ApiError, messageOf } from '../api';
import { JsonView, Loading, Notice, StatusBadge, TraceView } from '../components/common';
import { ConfigFields, type ConfigDraft, type FieldErrors, configOf, draftOf, errorsOf } from '../components/config_form';
import { type Column, ListControls, PagedTable, usePagedList } from '../components/lists';
import { ConsentCategoriesField, refusalText, useConsentRefusals, withPending } from '../components/privacy';
import { Name, Time } from '../components/text';
import { visibleText } from '../format';
import { useLoad } from '../hooks';
import type { DeliveryRecord, DestinationRecord, DestinationTestResult, DestinationTypeSchema, EventTrace } from '../types';

type View = 'edit' | 'test' | 'deliveries';
type Said = { kind: 'error' | 'success'; text: string };

export function DestinationsPage(props: { api: Api }) {
  const { api } = props;
  const types = useLoad((signal) => api.get<DestinationTypeSchema[]>('/destination-types', undefined, signal), [api]);
  const list = usePagedList<DestinationRecord>(api, '/destinations');
  const refusals = useConsentRefusals(api);
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<{ id: string; view: View } | null>(null);
  // The outcome of an action on one destination (created, enabled, a refused delete), shown
  // under its row: where the action happened.
  const [said, setSaid] = useState<{ id: string; said: Said } | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const toggle = (id: string, view: View) => {
    setSaid(null);
    setOpen(open && open.id === id && open.view === view ? null : { id, view });
  };

  const setEnabled = async (destination: DestinationRecord, enabled: boolean) => {
    setBusy(destination.id);
    try {
      const changed = await api.put<DestinationRecord>(`/destinations/${encodeURIComponent(destination.id)}`, {
        status: enabled ? 'active' : 'inactive',
      });
      list.update(changed);
      setSaid({
        id: destination.id,
        said: {
          kind: 'success',
          text: enabled ? 'Enabled: matching events are delivered again.' : 'Disabled: its deliveries are dead-lettered until it is enabled again.',
        },
      });
    } catch (err) {
      setSaid({ id: destination.id, said: { kind: 'error', text: messageOf(err) } });
    } finally {
      setBusy(null);
    }
  };

  const remove = async (destination: DestinationRecord) => {
    setConfirming(null);
    setBusy(destination.id);
    try {
      await api.delete(`/destinations/${encodeURIComponent(destination.id)}`);
      setSaid(null);
      if (open?.id === destination.id) setOpen(null);
      list.reload();
    } catch (err) {
      setSaid({ id: destination.id, said: { kind: 'error', text: messageOf(err) } });
    } finally {
      setBusy(null);
    }
  };

  const typeList = types.data ?? [];
  const schemaOf = (type: string) => typeList.find((t) => t.type === type) ?? null;

  const columns: Column<DestinationRecord>[] = [
    { header: 'Name', rowHeader: true, cell: (d) => <Name text={d.name} /> },
    { header: 'Type', width: '7rem', cell: (d) => <code>{d.type}</code> },
    { header: 'Status', width: '6.5rem', cell: (d) => <StatusBadge value={d.status === 'active' ? 'enabled' : 'disabled'} /> },
    {
      header: 'Consent',
      width: '11rem',
      cell: (d) => {
        const held = refusals.totals?.get(d.id) ?? 0;
        return (
          <div class="consent-cell" data-testid="consent-cell">
            {d.consent_categories.length > 0 ? <Name text={d.consent_categories.join(', ')} /> : <span class="muted">No categories</span>}
            {/* A destination without categories can still have refusals from before they were removed. */}
            {refusals.totals && (held > 0 || d.consent_categories.length > 0) ? (
              <span class={`consent-refusals${held > 0 ? '' : ' muted'}`} data-testid="consent-refusals">{refusalText(held)}</span>
            ) : null}
          </div>
        );
      },
    },
    { header: 'Created', width: '12rem', cell: (d) => <Time iso={d.createdAt} /> },
    {
      header: 'Actions',
      hiddenHeader: true,
      width: '27rem',
      class: 'actions',
      cell: (destination) => {
        const isOpen = open?.id === destination.id ? open.view : null;
        const enabled = destination.status === 'active';
        const label = destination.name;
        return (
          <div class="button-row">
            <button type="button" class="secondary small" aria-expanded={isOpen === 'edit'} disabled={!schemaOf(destination.type)} onClick={() => toggle(destination.id, 'edit')}>
              Edit<span class="visually-hidden"> {label}</span>
            </button>
            <button type="button" class="secondary small" aria-expanded={isOpen === 'test'} onClick={() => toggle(destination.id, 'test')}>
              Test<span class="visually-hidden"> {label}</span>
            </button>
            <button type="button" class="secondary small" aria-expanded={isOpen === 'deliveries'} onClick={() => toggle(destination.id, 'deliveries')}>
              Deliveries<span class="visually-hidden"> of {label}</span>
            </button>
            <button type="button" class="secondary small" disabled={busy === destination.id} onClick={() => setEnabled(destination, !enabled)}>
              {enabled ? 'Disable' : 'Enable'}<span class="visually-hidden"> {label}</span>
            </button>
            {confirming === destination.id ? (
              <>
                <button type="button" class="danger small" onClick={() => remove(destination)}>
                  Confirm delete<span class="visually-hidden"> {label}</span>
                </button>
                <button type="button" class="secondary small" onClick={() => setConfirming(null)}>Cancel</button>
              </>
            ) : (
              <button type="button" class="danger-outline small" disabled={busy === destination.id} onClick={() => { setSaid(null); setConfirming(destination.id); }}>
                Delete<span class="visually-hidden"> {label}</span>
              </button>
            )}
          </div>
        );
      },
    },
  ];

  const detail = (destination: DestinationRecord) => {
    const view = open?.id === destination.id ? open.view : null;
    const schema = schemaOf(destination.type);
    const notice = said && said.id === destination.id ? <Notice kind={said.said.kind}>{said.said.text}</Notice> : null;
    if (!notice && !view) return null;
    return (
      <div class="stack">
        {notice}
        {view === 'edit' && schema ? (
          <section aria-label={`Edit ${destination.name}`}>
            <DestinationForm api={api} types={typeList} destination={destination} onSaved={(saved) => list.update(saved)} />
          </section>
        ) : null}
        {view === 'test' ? <TestPanel api={api} destination={destination} /> : null}
        {view === 'deliveries' ? <DeliveriesPanel api={api} destination={destination} /> : null}
      </div>
    );
  };

  return (
    <div class="stack">
      <p class="lead">
        A destination is where forwarding rules send events: a webhook, a Pub/Sub topic, Amplitude, Mixpanel or Google
        Analytics 4. Secrets are write-only: once saved they are never shown again.
      </p>
      <div>
        <button type="button" aria-expanded={creating} onClick={() => setCreating(!creating)}>
          {creating ? 'Close the new destination form' : 'New destination'}
        </button>
      </div>
      {types.error ? <Notice kind="error">{types.error}</Notice> : null}
      {creating && typeList.length > 0 ? (
        <section class="card" aria-labelledby="new-destination-title">
          <h2 id="new-destination-title">New destination</h2>
          <DestinationForm
            api={api}
            types={typeList}
            destination={null}
            onSaved={(created) => {
              setCreating(false);
              list.pin(created);
              setOpen(null);
              setSaid({
                id: created.id,
                said: { kind: 'success', text: `Destination “${visibleText(created.name)}” created. Send it a test event with Test, then route events to it with a forwarding rule.` },
              });
            }}
          />
        </section>
      ) : null}
      {refusals.error ? <Notice kind="error">Events held back for consent: {refusals.error}</Notice> : null}
      <ListControls list={list} idPrefix="destinations" noun="destinations" />
      <PagedTable
        list={list}
        caption="Destinations"
        noun="destinations"
        columns={columns}
        rowClass={(d) => (open?.id === d.id || said?.id === d.id ? 'selected' : undefined)}
        detail={detail}
        empty="No destinations yet: create one above."
      />
    </div>
  );
}

/** Create (destination null) or edit a destination; the config fields come from the type's schema. */
function DestinationForm(props: {
  api: Api;
  types: DestinationTypeSchema[];
  destination: DestinationRecord | null;
  onSaved: (destination: DestinationRecord) => void;
}) {
  const { api, destination } = props;
  const editing = destination !== null;
  const prefix = editing ? `edit-${destination.id}` : 'new-destination';
  const [name, setName] = useState(destination?.name ?? '');
  const [type, setType] = useState(destination?.type ?? props.types[0].type);
  const [enabled, setEnabled] = useState(true);
  const schema = (props.types.find((t) => t.type === type) ?? props.types[0]).config_schema;
  const [draft, setDraft] = useState<ConfigDraft>(() => draftOf(schema, destination?.config ?? {}));
  const [secretsSet, setSecretsSet] = useState<string[]>(destination?.secrets_set ?? []);
  const [categories, setCategories] = useState<string[]>(destination?.consent_categories ?? []);
  const [pendingCategories, setPendingCategories] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [outcome, setOutcome] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  const chooseType = (next: string) => {
    setType(next);
    const nextSchema = props.types.find((t) => t.type === next)?.config_schema ?? schema;
    setDraft(draftOf(nextSchema, {}));
    setErrors({});
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setOutcome(null);
    const built = configOf(schema, draft);
    const local: FieldErrors = { ...built.errors };
    if (!name.trim()) local.name = 'must not be empty';
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    // A category typed but not added yet is meant too.
    const consent_categories = withPending(categories, pendingCategories);
    setCategories(consent_categories);
    setPendingCategories('');
    setBusy(true);
    try {
      const saved = editing
        ? await api.put<DestinationRecord>(`/destinations/${encodeURIComponent(destination.id)}`, {
            name: name.trim(),
            config: built.config,
            consent_categories,
          })
        : await api.post<DestinationRecord>('/destinations', {
            name: name.trim(),
            type,
            config: built.config,
            status: enabled ? 'active' : 'inactive',
            consent_categories,
          });
      // Typed secrets are dropped from the page once saved: the API keeps them, the page must not.
      setDraft(draftOf(schema, saved.config));
      setSecretsSet(saved.secrets_set);
      setCategories(saved.consent_categories);
      setErrors({});
      if (editing) setOutcome({ kind: 'success', text: 'Saved.' });
      props.onSaved(saved);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400 && err.field) {
        const found = errorsOf(err.field, err.message, err.details);
        // `consent_categories.2`: name the category, since its chip has no field of its own.
        const item = /^consent_categories\.(\d+)$/.exec(err.field);
        if (item && found.consent_categories) {
          const category = consent_categories[Number(item[1])];
          if (category !== undefined) found.consent_categories = `“${visibleText(category)}”: ${found.consent_categories}`;
        }
        setErrors(found);
        const known = Object.keys(found).some((key) => key === 'name' || key === 'type' || key === 'consent_categories' || key.startsWith('config.'));
        if (!known) setOutcome({ kind: 'error', text: err.message });
        else window.setTimeout(() => form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus(), 0);
      } else {
        setOutcome({ kind: 'error', text: messageOf(err) });
      }
    } finally {
      setBusy(false);
    }
  };

  const typeSchema = props.types.find((t) => t.type === type);
  return (
    <form ref={form} class="stack destination-form" onSubmit={submit} noValidate>
      <div class="row">
        <div class="field grow">
          <label for={`${prefix}-name`}>Name</label>
          <input id={`${prefix}-name`} value={name} maxLength={200} aria-invalid={errors.name ? true : undefined}
            aria-describedby={errors.name ? `${prefix}-name-error` : undefined}
            onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
          {errors.name ? <p class="field-error" id={`${prefix}-name-error`} role="alert">Name: {errors.name}</p> : null}
        </div>
        <div class="field">
          <label for={`${prefix}-type`}>Type</label>
          <select id={`${prefix}-type`} value={type} disabled={editing} onChange={(e) => chooseType((e.currentTarget as HTMLSelectElement).value)}>
            {props.types.map((t) => <option key={t.type} value={t.type}>{t.type}</option>)}
          </select>
          {errors.type ? <p class="field-error" role="alert">Type: {errors.type}</p> : null}
        </div>
        {!editing ? (
          <div class="field inline checkbox-field">
            <input id={`${prefix}-enabled`} type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.currentTarget as HTMLInputElement).checked)} />
            <label for={`${prefix}-enabled`}>Enabled</label>
          </div>
        ) : null}
      </div>
      {typeSchema ? <TypeFacts type={typeSchema} /> : null}
      <ConfigFields idPrefix={prefix} schema={schema} draft={draft} secretsSet={secretsSet} editing={editing} errors={errors} onChange={setDraft} />
      <ConsentCategoriesField id={`${prefix}-consent`} categories={categories} pending={pendingCategories} error={errors.consent_categories}
        onChange={(next, pending) => { setCategories(next); setPendingCategories(pending); }} />
      <div class="button-row">
        <button type="submit" disabled={busy}>{editing ? 'Save destination' : 'Create destination'}</button>
        {busy ? <span class="muted" role="status">Saving…</span> : null}
      </div>
      {outcome ? <Notice kind={outcome.kind}>{outcome.text}</Notice> : null}
    </form>
  );
}

/** Sends a test event (the sample track, or the user's own) and shows the destination's answer. */
function TestPanel(props: { api: Api; destination: DestinationRecord }) {
  const { api, destination } = props;
  const [custom, setCustom] = useState('');
  const [result, setResult] = useState<DestinationTestResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const id = `test-${destination.id}`;

  const run = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    let body: Record<string, unknown> = {};
    if (custom.trim()) {
      try {
        body = { event: JSON.parse(custom) };
      } catch (err) {
        setError(`The event is not valid JSON: ${messageOf(err)}`);
        setBusy(false);
        return;
      }
    }
    try {
      setResult(await api.post<DestinationTestResult>(`/destinations/${encodeURIComponent(destination.id)}/test`, body));
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="stack test-panel" aria-label={`Test ${destination.name}`}>
      <p class="help">
        Sends one event to this destination now, through the same connector and address checks as real deliveries
        {destination.status !== 'active' ? ' (it is disabled: only tests reach it)' : ''}. Nothing is recorded.
      </p>
      <details>
        <summary>Send my own event instead of the sample track</summary>
        <div class="field">
          <label for={`${id}-event`}>Event (JSON, a Segment call)</label>
          <textarea id={`${id}-event`} class="code-input" rows={5} spellcheck={false} value={custom}
            placeholder='{"type": "track", "event": "Order Completed", "userId": "u1"}'
            onInput={(e) => setCustom((e.currentTarget as HTMLTextAreaElement).value)} />
        </div>
      </details>
      <div class="button-row">
        <button type="button" disabled={busy} onClick={run}>
          Send test event<span class="visually-hidden"> to {destination.name}</span>
        </button>
        {busy ? <span class="muted" role="status">Sending…</span> : null}
      </div>
      {error ? <Notice kind="error">{error}</Notice> : null}
      {result ? (
        <div role="status" class={`test-result test-${result.outcome}`} data-testid="test-result">
          <p>
            <StatusBadge value={result.outcome === 'retry' ? 'retrying' : result.outcome} />{' '}
            {result.http_status !== null ? <strong>HTTP {result.http_status}</strong> : null}
            {result.duration_ms !== null ? <span class="muted"> · {Math.round(result.duration_ms)} ms</span> : null}
          </p>
          <pre class="test-detail">{result.detail}</pre>
          <details>
            <summary>The event sent</summary>
            <JsonView value={result.event} label="The test event as JSON" />
          </details>
        </div>
      ) : null}
    </section>
  );
}

/** The destination's recent deliveries, each with its trace beside the list. */
function DeliveriesPanel(props: { api: Api; destination: DestinationRecord }) {
  const { api, destination } = props;
  const path = `/destinations/${encodeURIComponent(destination.id)}/deliveries`;
  const deliveries = useLoad((signal) => api.get<DeliveryRecord[]>(path, { limit: 50 }, signal), [api, path]);
  const [chosen, setChosen] = useState<string | null>(null);
  const [trace, setTrace] = useState<{ id: string; trace?: EventTrace; error?: string } | null>(null);
  const traceHeading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (!chosen) return;
    const controller = new AbortController();
    setTrace({ id: chosen });
    api
      .get<EventTrace>(`/events/${encodeURIComponent(chosen)}/trace`, undefined, controller.signal)
      .then((found) => setTrace({ id: chosen, trace: found }))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setTrace({ id: chosen, error: messageOf(err) });
      });
    return () => controller.abort();
  }, [api, chosen]);

  useEffect(() => {
    if (trace?.trace) traceHeading.current?.focus();
  }, [trace?.trace]);

  const rows = deliveries.data ?? [];
  return (
    <section class="stack" aria-label={`Deliveries of ${destination.name}`}>
      <div class="section-head">
        <p class="help">The latest 50 deliveries, most recently attempted first, kept 30 days.</p>
        <button type="button" class="secondary small" disabled={deliveries.loading} onClick={deliveries.reload}>
          Refresh<span class="visually-hidden"> deliveries of {destination.name}</span>
        </button>
      </div>
      {deliveries.error ? <Notice kind="error">{deliveries.error}</Notice> : null}
      {deliveries.loading && !deliveries.data ? <Loading /> : null}
      {deliveries.data && rows.length === 0 ? <p class="muted">No deliveries yet: a forwarding rule sends matching events here.</p> : null}
      {rows.length > 0 ? (
        <div class={chosen ? 'split deliveries-split' : undefined}>
          <div class="table-wrap">
            <table class="dest-cards deliveries-table">
              <caption class="visually-hidden">Recent deliveries</caption>
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">Attempts</th>
                  <th scope="col">Last answer</th>
                  <th scope="col">Last attempt</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((delivery) => (
                  <tr key={delivery.delivery_id} data-testid="delivery-row" class={chosen === delivery.message_id ? 'selected' : undefined}>
                    <th scope="row" data-label="Event">
                      <button type="button" class="link trace-link" aria-pressed={chosen === delivery.message_id}
                        onClick={() => setChosen(chosen === delivery.message_id ? null : delivery.message_id)}>
                        <span class="visually-hidden">Trace of </span><Name text={delivery.message_id} />
                      </button>
                    </th>
                    <td data-label="Status"><StatusBadge value={delivery.status} /></td>
                    <td data-label="Attempts" class="num">{delivery.attempts}</td>
                    <td data-label="Last answer" class="delivery-detail">
                      <Name text={delivery.last_detail ?? '—'} />
                    </td>
                    <td data-label="Last attempt"><Time iso={delivery.updated_at} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {chosen ? (
            <aside class="card trace-panel" aria-labelledby={`trace-${destination.id}`}>
              <h3 id={`trace-${destination.id}`} ref={traceHeading} tabIndex={-1}>
                Trace of <Name text={chosen} />
              </h3>
              {trace && trace.id === chosen && trace.error ? <Notice kind="error">{trace.error}</Notice> : null}
              {trace && trace.id === chosen && trace.trace ? <TraceView trace={trace.trace} destinations={new Map([[destination.id, destination.name]])} /> : null}
              {!trace || trace.id !== chosen || (!trace.trace && !trace.error) ? <Loading label="Loading the trace…" /> : null}
            </aside>
          ) : null}
        </div>
      ) : null}
    </section>
  );
}

/** What the catalogue says of a type: what it does, which calls it sends, in what batches, at
 * what pace, and whether deletions reach it. */
function TypeFacts(props: { type: DestinationTypeSchema }) {
  const { type } = props;
  const facts = [
    `Sends ${type.event_types.join(', ')}`,
    type.batching.max_parts > 1 ? `up to ${type.batching.max_parts.toLocaleString()} per request` : 'one per request',
    type.rate_limit ? `at most ${type.rate_limit.requests} requests per ${type.rate_limit.per_seconds === 1 ? 'second' : `${type.rate_limit.per_seconds} s`} per instance` : null,
    type.supports_deletion ? 'user deletions reach it' : 'user deletions are manual',
  ].filter(Boolean);
  const docs = /^https:\/\//.test(type.docs_url) ? type.docs_url : null;
  return (
    <div class="help type-facts" data-testid="type-facts">
      <p>{type.description.replace(/`/g, '')}</p>
      <p class="muted">
        {facts.join(' · ')}
        {docs ? <>{' · '}<a href={docs} target="_blank" rel="noopener noreferrer">API docs</a></> : null}
      </p>
    </div>
  );
}
