import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { JsonView, Loading, Notice, StatusBadge, onListKeys } from '../components/common';
import { type Column, ListControls, PagedTable, usePagedList } from '../components/lists';
import { SchemaEditor, useSchemaCheck } from '../components/schema_editor';
import { Name, Time } from '../components/text';
import { WarehousePanel } from '../components/warehouse';
import { plural } from '../format';
import { useLoad } from '../hooks';
import type { Contract, SchemaProposal, ViolationCounts, ViolationPage } from '../types';

const WINDOWS = [
  { label: 'Last 24 hours', hours: 24 },
  { label: 'Last 7 days', hours: 24 * 7 },
  { label: 'Last 30 days', hours: 24 * 30 },
];
const EVENT_TYPES = ['track', 'page', 'screen', 'identify', 'group'] as const;
// Only these carry a name; the others' contracts judge every event of the type ("*").
const NAMED_TYPES = new Set(['track', 'page', 'screen']);
const MODES: { value: Contract['enforcement_mode']; label: string }[] = [
  { value: 'allow', label: 'allow: record only' },
  { value: 'warn', label: 'warn: record and let through' },
  { value: 'block', label: 'block: quarantine violating events' },
];
// The window of the list's violation counts.
const COUNT_HOURS = 24;
const STARTER_SCHEMA = '{\n  "properties": {\n    \n  }\n}';

type Message = { kind: 'error' | 'success'; text: string };

export function ContractsPage(props: { api: Api }) {
  const { api } = props;
  // Archived contracts judge nothing: hidden until asked for.
  const contracts = usePagedList<Contract>(api, '/event-contracts', { visibleStatus: 'active' });
  // One request for every contract's counts, not one per row.
  const counts = useLoad(
    (signal) => api.get<ViolationCounts>('/event-contracts/violation-counts', { hours: COUNT_HOURS }, signal),
    [api],
  );
  // The contract itself, not its id: it stays open when a search or "Load more" leaves its row
  // out of the loaded pages.
  const [chosen, setChosen] = useState<Contract | null>(null);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<Message | null>(null);
  const panel = useRef<HTMLDivElement>(null);

  // What opens (an editor, a contract) opens above the list: bring it into view and focus.
  useEffect(() => {
    const heading = panel.current?.querySelector<HTMLElement>('h2');
    if (heading) {
      heading.focus();
      panel.current?.scrollIntoView({ block: 'start' });
    }
  }, [chosen?.id, creating]);

  // A changed contract keeps its place in the list (and its open panel) with its new state.
  const changed = (contract: Contract) => {
    contracts.update(contract);
    setChosen(contract);
  };

  const columns: Column<Contract>[] = [
    {
      header: 'Name',
      rowHeader: true,
      cell: (c) => (
        <button
          type="button"
          class="link name-button"
          data-row
          aria-pressed={c.id === chosen?.id}
          onClick={() => { setChosen(c); setCreating(false); setCreated(null); }}
        >
          <Name text={c.name} />
        </button>
      ),
    },
    { header: 'Event', width: '11rem', cell: (c) => <code class="event-of"><Name text={`${c.event_type} · ${c.event_name}`} /></code> },
    {
      header: 'Violations (24 h)',
      width: '7rem',
      class: 'num',
      cell: (c) => {
        const count = counts.data?.counts[c.id];
        return (
          <span data-testid="violation-count" title={count ? `${plural(count.events, 'event')} with violations, ${count.blocked_events} blocked` : 'No violations'}>
            {counts.data ? (count?.violations ?? 0).toLocaleString() : '…'}
          </span>
        );
      },
    },
    { header: 'Enforcement', width: '8rem', cell: (c) => <StatusBadge value={c.enforcement_mode} /> },
    { header: 'Undeclared fields', width: '7.5rem', cell: (c) => <StatusBadge value={c.undeclared_fields} /> },
    { header: 'Status', width: '6.5rem', cell: (c) => <StatusBadge value={c.status} /> },
    { header: 'Version', width: '4.5rem', class: 'num', cell: (c) => c.version },
    { header: 'Created', width: '9.5rem', cell: (c) => <Time iso={c.created_at} /> },
  ];

  return (
    <div class="stack">
      <p class="lead">
        Contracts judge events of one type and name. Violations are recorded in every mode; “would block” counts the events a
        contract let through that <code>block</code> mode would have quarantined.
      </p>
      <div class="button-row">
        <button type="button" onClick={() => { setCreating(true); setChosen(null); setCreated(null); }} disabled={creating}>
          New contract
        </button>
      </div>
      <div ref={panel}>
        {creating ? (
          <ContractEditor
            api={api}
            contract={null}
            onCancel={() => setCreating(false)}
            onSaved={(contract) => {
              setCreating(false);
              // The heading above it names the contract (a long name would not fit a sentence).
              setCreated({ kind: 'success', text: 'Contract created (version 1).' });
              // At the top of the list, right under its panel, whatever the search.
              contracts.pin(contract);
              setChosen(contract);
            }}
          />
        ) : null}
        {chosen && !creating ? (
          <ContractDetail
            key={chosen.id}
            api={api}
            contract={chosen}
            created={created}
            onChanged={changed}
            onClose={() => setChosen(null)}
          />
        ) : null}
      </div>
      {counts.error ? <Notice kind="error">Violation counts: {counts.error}</Notice> : null}
      {counts.data?.truncated ? (
        <p class="muted">
          Violation counts cover the newest {plural(counts.data.scanned, 'record')} only: complete since <Time iso={counts.data.complete_since} />.
        </p>
      ) : null}
      <ListControls list={contracts} idPrefix="contracts" noun="contracts" hiddenLabel="archived" />
      {/* Arrow keys move between the contracts' names. */}
      <div class="contracts-list" onKeyDown={onListKeys}>
        <PagedTable
          list={contracts}
          caption="Contracts, newest first"
          noun="contracts"
          columns={columns}
          rowClass={(c) => (c.id === chosen?.id ? 'selected' : undefined)}
          empty="No contracts yet: create one with “New contract”."
        />
      </div>
      {/* Contracts type the warehouse's columns: its conflicts are theirs to settle. */}
      <WarehousePanel api={api} />
    </div>
  );
}

function ContractDetail(props: { api: Api; contract: Contract; created: Message | null; onChanged: (contract: Contract) => void; onClose: () => void }) {
  const { api, contract } = props;
  const [hours, setHours] = useState(24 * 7);
  const [mode, setMode] = useState(contract.enforcement_mode);
  const [notice, setNotice] = useState<Message | null>(null);
  const [editing, setEditing] = useState(false);
  const [saved, setSaved] = useState<Message | null>(props.created);
  const page = useLoad(
    (signal) =>
      api.get<ViolationPage>(
        `/event-contracts/${encodeURIComponent(contract.id)}/violations`,
        { from: new Date(Date.now() - hours * 3600 * 1000).toISOString(), limit: 25 },
        signal,
      ),
    [api, contract.id, contract.version, hours],
  );
  const summary = page.data?.summary ?? null;

  const saveMode = async (event: Event) => {
    event.preventDefault();
    try {
      const updated = await api.put<Contract>(`/event-contracts/${encodeURIComponent(contract.id)}`, { enforcement_mode: mode });
      setNotice({ kind: 'success', text: `Enforcement set to ${mode}.` });
      props.onChanged(updated);
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    }
  };

  if (editing) {
    return (
      <ContractEditor
        api={api}
        contract={contract}
        onCancel={() => setEditing(false)}
        onSaved={(updated) => {
          setEditing(false);
          setSaved({ kind: 'success', text: `Saved as version ${updated.version}.` });
          props.onChanged(updated);
        }}
      />
    );
  }

  return (
    <section class="card stack" aria-labelledby="contract-title">
      <div class="section-head">
        <h2 id="contract-title" tabIndex={-1} class="title-name"><Name text={contract.name} /></h2>
        <div class="button-row">
          <button type="button" class="secondary" onClick={() => { setEditing(true); setSaved(null); }}>Edit contract</button>
          <button type="button" class="secondary" onClick={props.onClose}>Close</button>
        </div>
      </div>
      {saved ? <Notice kind={saved.kind}>{saved.text}</Notice> : null}
      <p class="muted">
        <code><Name text={`${contract.event_type} · ${contract.event_name}`} /></code> · version {contract.version} · updated <Time iso={contract.updated_at} />
      </p>
      {contract.description ? <p class="description">{contract.description}</p> : null}
      <div class="field inline">
        <label for="contract-window">Window</label>
        <select id="contract-window" value={String(hours)} onChange={(e) => setHours(Number((e.currentTarget as HTMLSelectElement).value))}>
          {WINDOWS.map((w) => <option key={w.hours} value={String(w.hours)}>{w.label}</option>)}
        </select>
      </div>
      {page.error ? <Notice kind="error">{page.error}</Notice> : null}
      {page.loading && !page.data ? <Loading label="Summarising violations…" /> : null}
      {summary ? (
        <>
          <dl class="stats" data-testid="violation-summary">
            <div><dt>Events with violations</dt><dd>{summary.events.toLocaleString()}</dd></div>
            <div><dt>Violations</dt><dd>{summary.violations.toLocaleString()}</dd></div>
            <div><dt>Blocked (quarantined)</dt><dd>{summary.blocked_events.toLocaleString()}</dd></div>
            <div class="highlight"><dt>Would block</dt><dd data-testid="would-block">{summary.shadow.would_block.toLocaleString()}</dd></div>
            <div><dt>Would block (undeclared fields)</dt><dd>{summary.shadow.would_block_undeclared.toLocaleString()}</dd></div>
          </dl>
          {summary.truncated ? <p class="muted">Summary of the newest {plural(summary.scanned, 'record')} only.</p> : null}
          {summary.by_field_and_type.length > 0 ? (
            <div class="table-wrap">
              <table>
                <caption>Violations by field and type</caption>
                <thead><tr><th scope="col">Field</th><th scope="col">Type</th><th scope="col" class="num">Count</th></tr></thead>
                <tbody>
                  {summary.by_field_and_type.map((row) => (
                    <tr key={`${row.field}|${row.type}`}><td><code><Name text={row.field} /></code></td><td>{row.type}</td><td class="num">{row.count.toLocaleString()}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : <p class="muted">No violations in this window.</p>}
        </>
      ) : null}
      {page.data && page.data.data.length > 0 ? (
        <div class="table-wrap">
          <table>
            <caption>Latest violations</caption>
            <thead>
              <tr><th scope="col">When</th><th scope="col">Message id</th><th scope="col">Field</th><th scope="col">Type</th><th scope="col">Expected</th><th scope="col">Actual</th><th scope="col">Action</th></tr>
            </thead>
            <tbody>
              {page.data.data.map((v) => (
                <tr key={v.id}>
                  <td><Time iso={v.created_at} /></td>
                  <td><code><Name text={v.message_id} /></code></td>
                  <td><code><Name text={v.field} /></code></td>
                  <td>{v.type}</td>
                  <td>{v.expected ?? '—'}</td>
                  <td><code><Name text={v.actual ?? 'null'} /></code></td>
                  <td><StatusBadge value={v.action} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <form class="inline-form" onSubmit={saveMode}>
        <div class="field">
          <label for="contract-mode">Enforcement mode</label>
          <select id="contract-mode" value={mode} onChange={(e) => setMode((e.currentTarget as HTMLSelectElement).value as Contract['enforcement_mode'])}>
            {MODES.map((m) => <option key={m.value} value={m.value}>{m.label}</option>)}
          </select>
        </div>
        <button type="submit" class="secondary" disabled={mode === contract.enforcement_mode}>Save mode</button>
      </form>
      {notice ? <Notice kind={notice.kind}>{notice.text}</Notice> : null}
      <details>
        <summary>Schema (version {contract.version})</summary>
        <JsonView value={contract.schema_definition} label="Contract schema" />
      </details>
    </section>
  );
}

interface Draft {
  name: string;
  event_type: Contract['event_type'];
  event_name: string;
  description: string;
  enforcement_mode: Contract['enforcement_mode'];
  undeclared_fields: Contract['undeclared_fields'];
  status: Contract['status'];
}

function draftOf(contract: Contract | null): Draft {
  return {
    name: contract?.name ?? '',
    event_type: contract?.event_type ?? 'track',
    event_name: contract && contract.event_name !== '*' ? contract.event_name : '',
    description: contract?.description ?? '',
    enforcement_mode: contract?.enforcement_mode ?? 'warn',
    undeclared_fields: contract?.undeclared_fields ?? 'allow',
    status: contract?.status ?? 'active',
  };
}

/** Create (contract null) or edit a contract: its fields, the schema editor checked as typed,
 * and the events-seen panel that proposes a schema from recent events. */
function ContractEditor(props: { api: Api; contract: Contract | null; onCancel: () => void; onSaved: (contract: Contract) => void }) {
  const { api, contract } = props;
  const [draft, setDraft] = useState<Draft>(() => draftOf(contract));
  const [schema, setSchema] = useState(() => (contract ? JSON.stringify(contract.schema_definition, null, 2) : STARTER_SCHEMA));
  const check = useSchemaCheck(api, schema);
  const [message, setMessage] = useState<Message | null>(null);
  const [saving, setSaving] = useState(false);
  const named = NAMED_TYPES.has(draft.event_type);
  const set = (key: keyof Draft) => (event: Event) =>
    setDraft({ ...draft, [key]: (event.currentTarget as HTMLInputElement | HTMLSelectElement).value });

  const save = async (event: Event) => {
    event.preventDefault();
    let definition: unknown;
    try {
      definition = JSON.parse(schema);
    } catch (error) {
      setMessage({ kind: 'error', text: `The schema is not valid JSON: ${messageOf(error)}` });
      return;
    }
    const body = {
      name: draft.name,
      event_type: draft.event_type,
      event_name: named && draft.event_name.trim() ? draft.event_name.trim() : null,
      description: draft.description.trim() ? draft.description : null,
      schema_definition: definition,
      enforcement_mode: draft.enforcement_mode,
      undeclared_fields: draft.undeclared_fields,
      status: draft.status,
    };
    setSaving(true);
    try {
      const saved = contract
        ? await api.put<Contract>(`/event-contracts/${encodeURIComponent(contract.id)}`, body)
        : await api.post<Contract>('/event-contracts', body);
      props.onSaved(saved);
    } catch (error) {
      setMessage({ kind: 'error', text: messageOf(error) });
    } finally {
      setSaving(false);
    }
  };

  return (
    <section class="card stack contract-editor" aria-labelledby="editor-title">
      <h2 id="editor-title" tabIndex={-1} class="title-name">
        {contract ? <>Edit <Name text={contract.name} /></> : 'New contract'}
      </h2>
      <form class="editor-grid" onSubmit={save}>
        <div class="stack editor-fields">
          <div class="field">
            <label for="c-name">Name</label>
            <input id="c-name" required maxLength={200} value={draft.name} onInput={set('name')} />
          </div>
          <div class="row">
            <div class="field">
              <label for="c-type">Event type</label>
              <select id="c-type" value={draft.event_type} onChange={set('event_type')}>
                {EVENT_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}
              </select>
            </div>
            <div class="field grow">
              <label for="c-event-name">Event name</label>
              <input
                id="c-event-name"
                value={named ? draft.event_name : '*'}
                disabled={!named}
                placeholder="* (every name)"
                aria-describedby="c-event-name-help"
                onInput={set('event_name')}
              />
              <span id="c-event-name-help" class="hint">{named ? 'Empty or * judges every name.' : `${draft.event_type} events have no name.`}</span>
            </div>
          </div>
          <div class="field">
            <label for="c-description">Description</label>
            <textarea id="c-description" rows={2} maxLength={2000} value={draft.description} onInput={set('description')} />
          </div>
          <div class="row">
            <div class="field">
              <label for="c-mode">Enforcement mode</label>
              <select id="c-mode" value={draft.enforcement_mode} onChange={set('enforcement_mode')}>
                {MODES.map((m) => <option key={m.value} value={m.value}>{m.label}</option>)}
              </select>
            </div>
            <div class="field">
              <label for="c-undeclared">Undeclared fields</label>
              <select id="c-undeclared" value={draft.undeclared_fields} onChange={set('undeclared_fields')}>
                {MODES.map((m) => <option key={m.value} value={m.value}>{m.label}</option>)}
              </select>
            </div>
            {contract ? (
              <div class="field">
                <label for="c-status">Status</label>
                <select id="c-status" value={draft.status} onChange={set('status')}>
                  <option value="active">active</option>
                  <option value="archived">archived</option>
                </select>
              </div>
            ) : null}
          </div>
          <div class="field">
            <label for="c-schema">Schema</label>
            <SchemaEditor id="c-schema" value={schema} onInput={setSchema} state={check} />
          </div>
          <div class="button-row">
            <button type="submit" disabled={saving || check.kind === 'invalid' || check.kind === 'empty'}>
              {contract ? 'Save contract' : 'Create contract'}
            </button>
            <button type="button" class="secondary" onClick={props.onCancel}>Cancel</button>
          </div>
          {message ? <Notice kind={message.kind}>{message.text}</Notice> : null}
        </div>
        <EventsSeen api={api} eventType={draft.event_type} eventName={named ? draft.event_name.trim() : ''} onUse={(text) => setSchema(text)} />
      </form>
    </section>
  );
}

/** What recent events of the contract's type and name looked like, as a proposed schema. */
function EventsSeen(props: { api: Api; eventType: string; eventName: string; onUse: (schema: string) => void }) {
  const { api, eventType, eventName } = props;
  const [limit, setLimit] = useState(100);
  const [proposal, setProposal] = useState<SchemaProposal | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [used, setUsed] = useState(false);
  const needsName = eventType === 'track' && (eventName === '' || eventName === '*');

  const look = async () => {
    setLoading(true);
    setError(null);
    setUsed(false);
    try {
      setProposal(
        await api.get<SchemaProposal>('/event-contracts/proposal', {
          event_type: eventType,
          event_name: NAMED_TYPES.has(eventType) && eventName ? eventName : null,
          limit,
        }),
      );
    } catch (err) {
      setProposal(null);
      setError(messageOf(err));
    } finally {
      setLoading(false);
    }
  };

  return (
    <aside class="events-seen stack" aria-labelledby="events-seen-title">
      <h3 id="events-seen-title">Events seen</h3>
      <p class="muted">A schema proposed from the newest stored events of this type and name (last 7 days): a starting point to edit.</p>
      <div class="inline-form">
        <div class="field">
          <label for="seen-limit">Sample</label>
          <select id="seen-limit" value={String(limit)} onChange={(e) => setLimit(Number((e.currentTarget as HTMLSelectElement).value))}>
            {[20, 100, 500, 1000].map((n) => <option key={n} value={String(n)}>newest {n}</option>)}
          </select>
        </div>
        <button type="button" class="secondary" onClick={look} disabled={loading || needsName}>
          {loading ? 'Looking…' : 'Propose a schema'}
        </button>
      </div>
      {needsName ? <p class="hint">Name the track event first.</p> : null}
      {error ? <Notice kind="error">{error}</Notice> : null}
      {proposal ? (
        proposal.sampled === 0 ? (
          <p class="muted" role="status">No <Name text={proposal.event_name} /> events stored in the last 7 days.</p>
        ) : (
          <>
            <p role="status" data-testid="proposal-summary">
              {plural(proposal.sampled, 'event')} sampled, the newest received <Time iso={proposal.newest_received_at} />.
            </p>
            <div class="table-wrap">
              <table class="proposal">
                <caption>Fields of {proposal.target}</caption>
                <thead><tr><th scope="col">Field</th><th scope="col">Types</th><th scope="col" class="num">Seen</th><th scope="col">Required</th></tr></thead>
                <tbody>
                  {proposal.fields.map((f) => (
                    <tr key={f.field}>
                      <td><code><Name text={f.field} /></code></td>
                      <td>{f.types.join(' | ')}</td>
                      <td class="num">{f.seen.toLocaleString()}</td>
                      <td>{f.required ? 'yes' : 'no'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div class="button-row">
              <button type="button" onClick={() => { props.onUse(JSON.stringify(proposal.schema_definition, null, 2)); setUsed(true); }}>
                Use this schema
              </button>
            </div>
            {used ? <Notice kind="success">The proposed schema is in the editor: check it, then save.</Notice> : null}
          </>
        )
      ) : null}
    </aside>
  );
}
