import { useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { JsonView, Loading, Notice, StatusBadge, onListKeys } from '../components/common';
import { formatTime, plural } from '../format';
import { useLoad } from '../hooks';
import type { Contract, ViolationPage } from '../types';

const WINDOWS = [
  { label: 'Last 24 hours', hours: 24 },
  { label: 'Last 7 days', hours: 24 * 7 },
  { label: 'Last 30 days', hours: 24 * 30 },
];

export function ContractsPage(props: { api: Api }) {
  const { api } = props;
  const contracts = useLoad((signal) => api.get<Contract[]>('/event-contracts', undefined, signal), [api]);
  const [selected, setSelected] = useState<string | null>(null);
  const list = contracts.data ?? [];
  const chosen = list.find((c) => c.id === selected) ?? null;

  return (
    <div class="stack">
      <p class="lead">
        Contracts judge events of one type and name. Violations are recorded in every mode; “would block” counts the events a
        contract let through that <code>block</code> mode would have quarantined.
      </p>
      {contracts.error ? <Notice kind="error">{contracts.error}</Notice> : null}
      {contracts.loading && !contracts.data ? <Loading /> : null}
      {contracts.data && list.length === 0 ? (
        <p class="muted">No contracts yet. Create them with <code>POST /api/v1/workspaces/{'{id}'}/event-contracts</code> (docs/CONTRACTS.md).</p>
      ) : null}
      {list.length > 0 ? (
        <div class="table-wrap card" onKeyDown={onListKeys}>
          <table>
            <caption class="visually-hidden">Contracts</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Event</th>
                <th scope="col">Enforcement</th>
                <th scope="col">Undeclared fields</th>
                <th scope="col">Status</th>
                <th scope="col" class="num">Version</th>
              </tr>
            </thead>
            <tbody>
              {list.map((c) => (
                <tr key={c.id} class={c.id === selected ? 'selected' : undefined}>
                  <th scope="row">
                    <button type="button" class="link" data-row aria-pressed={c.id === selected} onClick={() => setSelected(c.id)}>
                      {c.name}
                    </button>
                  </th>
                  <td><code>{c.event_type} · {c.event_name}</code></td>
                  <td><StatusBadge value={c.enforcement_mode} /></td>
                  <td><StatusBadge value={c.undeclared_fields} /></td>
                  <td><StatusBadge value={c.status} /></td>
                  <td class="num">{c.version}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {chosen ? <ContractDetail key={chosen.id} api={api} contract={chosen} onChanged={contracts.reload} /> : null}
    </div>
  );
}

function ContractDetail(props: { api: Api; contract: Contract; onChanged: () => void }) {
  const { api, contract } = props;
  const [hours, setHours] = useState(24 * 7);
  const [mode, setMode] = useState(contract.enforcement_mode);
  const [notice, setNotice] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
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
      await api.put(`/event-contracts/${encodeURIComponent(contract.id)}`, { enforcement_mode: mode });
      setNotice({ kind: 'success', text: `Enforcement set to ${mode}.` });
      props.onChanged();
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    }
  };

  return (
    <section class="card stack" aria-labelledby="contract-title">
      <div class="section-head">
        <h2 id="contract-title">{contract.name}</h2>
        <div class="field inline">
          <label for="contract-window">Window</label>
          <select id="contract-window" value={String(hours)} onChange={(e) => setHours(Number((e.currentTarget as HTMLSelectElement).value))}>
            {WINDOWS.map((w) => <option key={w.hours} value={String(w.hours)}>{w.label}</option>)}
          </select>
        </div>
      </div>
      {contract.description ? <p>{contract.description}</p> : null}
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
                    <tr key={`${row.field}|${row.type}`}><td><code>{row.field}</code></td><td>{row.type}</td><td class="num">{row.count.toLocaleString()}</td></tr>
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
                  <td>{formatTime(v.created_at)}</td>
                  <td><code>{v.message_id}</code></td>
                  <td><code>{v.field}</code></td>
                  <td>{v.type}</td>
                  <td>{v.expected ?? '—'}</td>
                  <td><code>{v.actual ?? 'null'}</code></td>
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
            <option value="allow">allow: record only</option>
            <option value="warn">warn: record and let through</option>
            <option value="block">block: quarantine violating events</option>
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
