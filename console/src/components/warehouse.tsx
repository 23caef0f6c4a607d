// The Contracts page's Warehouse panel: the workspace's BigQuery views over its events, their
// column types' conflicts, what the caps folded away, a sync on demand and the settings.

import { useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { plural, visibleText } from '../format';
import { useLoad } from '../hooks';
import type { Warehouse, WarehouseSync } from '../types';
import { Loading, Notice } from './common';
import { Name, Time } from './text';
import { WarehouseSettingsForm } from './warehouse_settings';

type Message = { kind: 'error' | 'success'; text: string };

export function WarehousePanel(props: { api: Api }) {
  const { api } = props;
  const loaded = useLoad((signal) => api.get<Warehouse>('/warehouse', undefined, signal), [api]);
  // The latest answer of a sync or a save, which describes the warehouse as a GET would.
  const [latest, setLatest] = useState<Warehouse | null>(null);
  const [syncing, setSyncing] = useState(false);
  const [synced, setSynced] = useState<Message | null>(null);
  const warehouse = latest ?? loaded.data;

  const syncNow = async () => {
    setSyncing(true);
    setSynced(null);
    try {
      const answer = await api.post<WarehouseSync>('/warehouse/sync', undefined);
      setLatest(answer);
      setSynced({ kind: 'success', text: syncSummary(answer) });
    } catch (err) {
      setSynced({ kind: 'error', text: `The sync failed: ${messageOf(err)}` });
    } finally {
      setSyncing(false);
    }
  };

  return (
    <section class="card stack warehouse" aria-labelledby="warehouse-title">
      <div class="section-head">
        <h2 id="warehouse-title">Warehouse</h2>
        <div class="button-row">
          <button type="button" onClick={syncNow} disabled={syncing || !warehouse}>Sync now</button>
          {syncing ? <span class="muted" role="status">Syncing…</span> : null}
        </div>
      </div>
      <p class="help">
        Segment’s tables as BigQuery views over the events, typed by contracts or by the values seen. A sync (hourly, or
        <strong> Sync now</strong>) looks at the events since the last one and rewrites the views that changed.
      </p>
      {synced ? <Notice kind={synced.kind}>{synced.text}</Notice> : null}
      {loaded.error && !warehouse ? <Notice kind="error">{loaded.error}</Notice> : null}
      {!warehouse && !loaded.error ? <Loading label="Loading the warehouse…" /> : null}
      {warehouse ? (
        <>
          <dl class="stats warehouse-facts" data-testid="warehouse-facts">
            <div><dt>Dataset</dt><dd><code>{warehouse.dataset}</code></dd></div>
            <div><dt>Last sync</dt><dd>{warehouse.synced_at ? <Time iso={warehouse.synced_at} /> : 'never'}</dd></div>
            <div class={warehouse.in_step ? undefined : 'highlight'}>
              <dt>Views</dt>
              <dd data-testid="warehouse-in-step">{warehouse.in_step ? 'in step' : 'out of step'}</dd>
            </div>
          </dl>
          {warehouse.in_step ? null : (
            <p class="muted">The views differ from what the settings, contracts and events seen make them: the next sync rewrites them.</p>
          )}
          <Conflicts warehouse={warehouse} />
          <Folded warehouse={warehouse} />
          <Tables warehouse={warehouse} />
          <WarehouseSettingsForm
            api={api}
            settings={warehouse.settings}
            onSaved={(answer) => { setLatest(answer); setSynced(null); }}
          />
        </>
      ) : null}
    </section>
  );
}

function syncSummary(answer: WarehouseSync): string {
  const parts = [
    `${plural(answer.events_observed, 'event')} observed`,
    `${plural(answer.views_rewritten.length, 'view')} rewritten`,
  ];
  if (answer.views_dropped.length > 0) parts.push(`${plural(answer.views_dropped.length, 'view')} dropped`);
  if (answer.events_expired > 0) parts.push(`${plural(answer.events_expired, 'event')} deleted for the retention`);
  return `Synced: ${parts.join(', ')}.`;
}

function Conflicts(props: { warehouse: Warehouse }) {
  const { conflicts } = props.warehouse;
  if (conflicts.length === 0) return <p class="muted" data-testid="no-conflicts">No conflicts: every value seen fits its column.</p>;
  return (
    // Below 600 px each conflict is a card of labelled lines (styles.css): seven columns do not
    // fit a phone. The explicit roles keep it a table to screen readers whatever its display.
    <div class="table-wrap">
      <table class="warehouse-conflicts" role="table">
        <caption>Conflicts: values of a type their column does not hold ({conflicts.length.toLocaleString()})</caption>
        <thead role="rowgroup">
          <tr role="row">
            {['Table', 'Column', 'Key', 'Type', 'Typed by', 'Seen types', 'Values not fitting'].map((header) => (
              <th key={header} role="columnheader" scope="col">{header}</th>
            ))}
          </tr>
        </thead>
        <tbody role="rowgroup">
          {conflicts.map((c) => (
            <tr key={`${c.table}.${c.column}`} role="row">
              <td role="cell" data-label="Table"><code><Name text={c.table} /></code></td>
              <th role="rowheader" scope="row" data-label="Column"><code><Name text={c.column} /></code></th>
              <td role="cell" data-label="Key"><code><Name text={c.key} /></code></td>
              <td role="cell" data-label="Type">{c.type}</td>
              <td role="cell" data-label="Typed by">{c.typed_by}</td>
              <td role="cell" data-label="Seen types">{c.seen_types.join(', ')}</td>
              <td role="cell" data-label="Values not fitting" class="wrap"><Quoted text={c.values_not_fitting} /></td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The API's sentence with its `backquoted` names as code. */
function Quoted(props: { text: string }) {
  return <>{props.text.split('`').map((part, index) => (index % 2 === 1 ? <code key={index}>{part}</code> : part))}</>;
}

function Folded(props: { warehouse: Warehouse }) {
  const { folded_events: events, tables, settings } = props.warehouse;
  const folding = tables.filter((t) => t.folded.length > 0);
  return (
    <>
      {events.length > 0 ? (
        <div data-testid="folded-events">
          <h3>Folded events ({events.length.toLocaleString()})</h3>
          <p class="help">
            Past the cap of {plural(settings.max_event_tables, 'per-event table')}: these track events are only in
            <code> tracks</code>, their properties in its <code>properties</code> JSON column.
          </p>
          <ul class="folded-list">
            {events.map((name) => <li key={name}><code><Name text={name} /></code></li>)}
          </ul>
        </div>
      ) : null}
      {folding.length > 0 ? (
        <div class="table-wrap">
          <table class="warehouse-folded">
            <caption>Folded keys: in the JSON column only (past {plural(settings.max_columns, 'column')}, or unfit for a column name)</caption>
            <thead><tr><th scope="col">Table</th><th scope="col">Keys</th></tr></thead>
            <tbody>
              {folding.map((t) => (
                <tr key={t.name} data-testid="folded-keys-row">
                  <th scope="row"><code><Name text={t.name} /></code></th>
                  <td class="wrap">{t.folded.map((key, index) => <span key={key}>{index > 0 ? ', ' : null}<code>{visibleText(key)}</code></span>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}

function Tables(props: { warehouse: Warehouse }) {
  const { tables } = props.warehouse;
  if (tables.length === 0) return <p class="muted">No tables yet: a sync makes them from the events it sees.</p>;
  return (
    <details>
      <summary>Tables ({tables.length.toLocaleString()})</summary>
      <div class="table-wrap">
        <table>
          <caption class="visually-hidden">Warehouse tables</caption>
          <thead><tr><th scope="col">Table</th><th scope="col">Holds</th><th scope="col" class="num">Columns</th><th scope="col">Typed by contract</th></tr></thead>
          <tbody>
            {tables.map((t) => (
              <tr key={t.name}>
                <th scope="row"><code><Name text={t.name} /></code></th>
                <td>{t.event_text !== null ? <Name text={t.event_text} /> : t.kind}</td>
                <td class="num">{t.columns.length.toLocaleString()}</td>
                <td>{t.contract_id ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </details>
  );
}
