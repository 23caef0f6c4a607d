import { useState } from 'preact/hooks';

import { type Api, ApiError, messageOf } from '../api';
import { Notice, StatusBadge } from '../components/common';
import { type FieldErrors, errorsOf } from '../components/config_form';
import { type Column, ListControls, PagedTable, optionLabel, usePagedList } from '../components/lists';
import { Name, Time } from '../components/text';
import { visibleText } from '../format';
import { useLoad } from '../hooks';
import { CALL_TYPES, type CallType, type DestinationRecord, type ForwardingRule, type Transformation } from '../types';

type Said = { kind: 'error' | 'success'; text: string };

// Event names shown in a row before "+N more".
const NAMES_SHOWN = 3;

export function ForwardingRulesPage(props: { api: Api }) {
  const { api } = props;
  // Every destination and transformation, for the pickers and to name them in the list.
  const destinations = useLoad((signal) => api.get<DestinationRecord[]>('/destinations', undefined, signal), [api]);
  const transformations = useLoad((signal) => api.get<Transformation[]>('/event-transformations', undefined, signal), [api]);
  const list = usePagedList<ForwardingRule>(api, '/event-forwarding-rules');
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<string | null>(null);
  // The outcome of an action on one rule, shown under its row: where the action happened.
  const [said, setSaid] = useState<{ id: string; said: Said } | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const destinationName = (id: string) => destinations.data?.find((d) => d.id === id)?.name ?? null;
  const transformationName = (id: string) => transformations.data?.find((t) => t.id === id)?.name ?? null;

  const setEnabled = async (rule: ForwardingRule, enabled: boolean) => {
    setBusy(rule.id);
    try {
      list.update(await api.put<ForwardingRule>(`/event-forwarding-rules/${encodeURIComponent(rule.id)}`, { enabled }));
      setSaid({ id: rule.id, said: { kind: 'success', text: enabled ? 'Enabled: matching events are forwarded.' : 'Disabled: no event is forwarded by this rule.' } });
    } catch (err) {
      setSaid({ id: rule.id, said: { kind: 'error', text: messageOf(err) } });
    } finally {
      setBusy(null);
    }
  };

  const remove = async (rule: ForwardingRule) => {
    setConfirming(null);
    setBusy(rule.id);
    try {
      await api.delete(`/event-forwarding-rules/${encodeURIComponent(rule.id)}`);
      setSaid(null);
      list.reload();
    } catch (err) {
      setSaid({ id: rule.id, said: { kind: 'error', text: messageOf(err) } });
    } finally {
      setBusy(null);
    }
  };

  const pickers = {
    destinations: destinations.data ?? [],
    transformations: transformations.data ?? [],
  };
  const noDestinations = destinations.data !== null && destinations.data.length === 0;

  const columns: Column<ForwardingRule>[] = [
    { header: 'Name', rowHeader: true, cell: (rule) => <Name text={rule.name} /> },
    {
      header: 'Destination',
      width: '13rem',
      cell: (rule) => {
        const name = destinationName(rule.destination_id);
        return name !== null ? <Name text={name} /> : <code class="muted">{rule.destination_id}</code>;
      },
    },
    { header: 'Selects', width: '13rem', cell: (rule) => <Selectors rule={rule} /> },
    {
      header: 'Transformation',
      width: '10rem',
      cell: (rule) => {
        if (rule.transformation_id === null) return <span class="muted">none</span>;
        const name = transformationName(rule.transformation_id);
        return name !== null ? <Name text={name} /> : <code class="muted">{rule.transformation_id}</code>;
      },
    },
    { header: 'Status', width: '6.5rem', cell: (rule) => <StatusBadge value={rule.enabled ? 'enabled' : 'disabled'} /> },
    { header: 'Created', width: '11rem', cell: (rule) => <Time iso={rule.created_at} /> },
    {
      header: 'Actions',
      hiddenHeader: true,
      width: '15rem',
      class: 'actions',
      cell: (rule) => (
        <div class="button-row">
          <button type="button" class="secondary small" aria-expanded={editing === rule.id} onClick={() => { setSaid(null); setEditing(editing === rule.id ? null : rule.id); }}>
            Edit<span class="visually-hidden"> {rule.name}</span>
          </button>
          <button type="button" class="secondary small" disabled={busy === rule.id} onClick={() => setEnabled(rule, !rule.enabled)}>
            {rule.enabled ? 'Disable' : 'Enable'}<span class="visually-hidden"> {rule.name}</span>
          </button>
          {confirming === rule.id ? (
            <>
              <button type="button" class="danger small" onClick={() => remove(rule)}>
                Confirm delete<span class="visually-hidden"> {rule.name}</span>
              </button>
              <button type="button" class="secondary small" onClick={() => setConfirming(null)}>Cancel</button>
            </>
          ) : (
            <button type="button" class="danger-outline small" disabled={busy === rule.id} onClick={() => { setSaid(null); setConfirming(rule.id); }}>
              Delete<span class="visually-hidden"> {rule.name}</span>
            </button>
          )}
        </div>
      ),
    },
  ];

  const detail = (rule: ForwardingRule) => {
    const notice = said && said.id === rule.id ? <Notice kind={said.said.kind}>{said.said.text}</Notice> : null;
    const form =
      editing === rule.id && destinations.data ? (
        <section aria-label={`Edit ${rule.name}`}>
          <RuleForm api={api} rule={rule} {...pickers} onSaved={(saved) => list.update(saved)} />
        </section>
      ) : null;
    return notice || form ? <div class="stack">{notice}{form}</div> : null;
  };

  return (
    <div class="stack">
      <p class="lead">
        A forwarding rule sends the events it selects, from every source, to one destination, optionally through a
        transformation. Empty selectors select every event.
      </p>
      <div class="button-row">
        <button type="button" aria-expanded={creating} disabled={noDestinations} onClick={() => setCreating(!creating)}>
          {creating ? 'Close the new rule form' : 'New forwarding rule'}
        </button>
        {noDestinations ? <p class="help">Create a destination first: a rule sends events to one.</p> : null}
      </div>
      {destinations.error ? <Notice kind="error">{destinations.error}</Notice> : null}
      {transformations.error ? <Notice kind="error">{transformations.error}</Notice> : null}
      {creating && destinations.data ? (
        <section class="card" aria-labelledby="new-rule-title">
          <h2 id="new-rule-title">New forwarding rule</h2>
          <RuleForm
            api={api}
            rule={null}
            {...pickers}
            onSaved={(created) => {
              setCreating(false);
              list.pin(created);
              setSaid({ id: created.id, said: { kind: 'success', text: `Forwarding rule “${visibleText(created.name)}” created: matching events are forwarded within seconds.` } });
            }}
          />
        </section>
      ) : null}
      <ListControls list={list} idPrefix="rules" noun="forwarding rules" />
      <PagedTable
        list={list}
        caption="Forwarding rules"
        noun="forwarding rules"
        columns={columns}
        rowClass={(rule) => (editing === rule.id || said?.id === rule.id ? 'selected' : undefined)}
        detail={detail}
        empty="No forwarding rules yet."
      />
    </div>
  );
}

function Selectors(props: { rule: ForwardingRule }) {
  const { event_types: types, event_names: names } = props.rule;
  return (
    <div class="selectors">
      <div>{types.length === 0 ? <span class="muted">every type</span> : types.map((t) => <span key={t} class={`type type-${t}`}>{t} </span>)}</div>
      <div>
        {names.length === 0 ? <span class="muted">every name</span> : null}
        {names.slice(0, NAMES_SHOWN).map((name, index) => <div key={index}><Name text={name} /></div>)}
        {names.length > NAMES_SHOWN ? <span class="muted">+{names.length - NAMES_SHOWN} more</span> : null}
      </div>
    </div>
  );
}

function RuleForm(props: {
  api: Api;
  rule: ForwardingRule | null;
  destinations: DestinationRecord[];
  transformations: Transformation[];
  onSaved: (rule: ForwardingRule) => void;
}) {
  const { api, rule } = props;
  const prefix = rule ? `rule-${rule.id}` : 'new-rule';
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  const destinations = [...props.destinations].sort(byName);
  const transformations = [...props.transformations].sort(byName);
  const [name, setName] = useState(rule?.name ?? '');
  const [destinationId, setDestinationId] = useState(rule?.destination_id ?? destinations[0]?.id ?? '');
  const [types, setTypes] = useState<CallType[]>(rule?.event_types ?? []);
  const [names, setNames] = useState((rule?.event_names ?? []).join('\n'));
  const [transformationId, setTransformationId] = useState(rule?.transformation_id ?? '');
  const [enabled, setEnabled] = useState(rule?.enabled ?? true);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [outcome, setOutcome] = useState<Said | null>(null);
  const [busy, setBusy] = useState(false);

  const toggleType = (type: CallType, on: boolean) =>
    setTypes(on ? CALL_TYPES.filter((t) => t === type || types.includes(t)) : types.filter((t) => t !== type));

  const submit = async (event: Event) => {
    event.preventDefault();
    setOutcome(null);
    const local: FieldErrors = {};
    if (!name.trim()) local.name = 'must not be empty';
    if (!destinationId) local.destination_id = 'choose a destination';
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    const body = {
      name: name.trim(),
      destination_id: destinationId,
      event_types: types,
      // One per line, exactly as SDKs send them: only empty lines are dropped.
      event_names: names.split('\n').filter((line) => line.trim() !== ''),
      transformation_id: transformationId || null,
      enabled,
    };
    setBusy(true);
    try {
      const saved = rule
        ? await api.put<ForwardingRule>(`/event-forwarding-rules/${encodeURIComponent(rule.id)}`, body)
        : await api.post<ForwardingRule>('/event-forwarding-rules', body);
      setErrors({});
      if (rule) setOutcome({ kind: 'success', text: 'Saved.' });
      props.onSaved(saved);
    } catch (err) {
      if (err instanceof ApiError && err.field) {
        const found = errorsOf(err.field, err.message, err.details);
        const fields = ['name', 'destination_id', 'event_types', 'event_names', 'transformation_id'];
        if (Object.keys(found).some((key) => fields.includes(key))) setErrors(found);
        else setOutcome({ kind: 'error', text: err.message });
      } else {
        setOutcome({ kind: 'error', text: messageOf(err) });
      }
    } finally {
      setBusy(false);
    }
  };

  const error = (field: string) =>
    errors[field] ? <p class="field-error" id={`${prefix}-${field}-error`} role="alert">{errors[field]}</p> : null;
  const invalid = (field: string) => (errors[field] ? { 'aria-invalid': true, 'aria-describedby': `${prefix}-${field}-error` } : {});

  return (
    <form class="stack rule-form" onSubmit={submit} noValidate>
      <div class="row">
        <div class="field grow">
          <label for={`${prefix}-name`}>Name</label>
          <input id={`${prefix}-name`} value={name} maxLength={200} {...invalid('name')} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
          {error('name')}
        </div>
        <div class="field grow">
          <label for={`${prefix}-destination`}>Destination</label>
          <select id={`${prefix}-destination`} value={destinationId} {...invalid('destination_id')} onChange={(e) => setDestinationId((e.currentTarget as HTMLSelectElement).value)}>
            {destinations.map((d) => (
              <option key={d.id} value={d.id} title={visibleText(d.name)}>
                {optionLabel(d.name)} ({d.type}{d.status === 'active' ? '' : ', disabled'})
              </option>
            ))}
          </select>
          {error('destination_id')}
        </div>
      </div>
      <fieldset class="radios" {...invalid('event_types')}>
        <legend>Event types</legend>
        {CALL_TYPES.map((type) => (
          <label key={type}>
            <input type="checkbox" checked={types.includes(type)} onChange={(e) => toggleType(type, (e.currentTarget as HTMLInputElement).checked)} />
            {type}
          </label>
        ))}
        <span class="help">{types.length === 0 ? 'None ticked: every type.' : ''}</span>
      </fieldset>
      {error('event_types')}
      <div class="field">
        <label for={`${prefix}-names`}>Event names (one per line; empty: every name)</label>
        <textarea id={`${prefix}-names`} rows={3} spellcheck={false} value={names} {...invalid('event_names')}
          placeholder={'Order Completed\nSigned Up'} onInput={(e) => setNames((e.currentTarget as HTMLTextAreaElement).value)} />
        <p class="help">A track's event, a page's or screen's name, matched exactly.</p>
        {error('event_names')}
      </div>
      <div class="row">
        <div class="field grow">
          <label for={`${prefix}-transformation`}>Transformation</label>
          <select id={`${prefix}-transformation`} value={transformationId} {...invalid('transformation_id')} onChange={(e) => setTransformationId((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">None: events are sent as they are</option>
            {transformations.map((t) => (
              <option key={t.id} value={t.id} title={visibleText(t.name)}>
                {optionLabel(t.name)}{t.status === 'active' ? '' : ` (${t.status})`}
              </option>
            ))}
          </select>
          {error('transformation_id')}
        </div>
        <div class="field inline checkbox-field">
          <input id={`${prefix}-enabled`} type="checkbox" checked={enabled} onChange={(e) => setEnabled((e.currentTarget as HTMLInputElement).checked)} />
          <label for={`${prefix}-enabled`}>Enabled</label>
        </div>
      </div>
      <div class="button-row">
        <button type="submit" disabled={busy}>{rule ? 'Save rule' : 'Create rule'}</button>
        {busy ? <span class="muted" role="status">Saving…</span> : null}
      </div>
      {outcome ? <Notice kind={outcome.kind}>{outcome.text}</Notice> : null}
    </form>
  );
}
