// The warehouse's settings form: its caps and retention, saved whole with PUT /warehouse/settings,
// the API's refusals under the field they name.

import { useState } from 'preact/hooks';

import { type Api, ApiError, messageOf } from '../api';
import type { Warehouse, WarehouseSettings } from '../types';
import { Notice } from './common';
import { type FieldErrors, errorsOf } from './config_form';

type Field = keyof WarehouseSettings;
type Draft = Record<Field, string>;

const FIELDS: { name: Field; label: string; help: string }[] = [
  {
    name: 'max_event_tables',
    label: 'Per-event tables at most',
    help: 'The first-seen track events get a table each; later ones are only in tracks. Empty: the default, 200.',
  },
  {
    name: 'max_columns',
    label: 'Columns per table at most',
    help: 'The first-seen keys get a column; the rest stay in the table’s properties or traits JSON column. Empty: the default, 300.',
  },
  {
    name: 'retention_days',
    label: 'Retention in days',
    help: 'Older events leave every view at once and are deleted at the next daily sync. Empty: unlimited.',
  },
];

function draftOf(settings: WarehouseSettings): Draft {
  return {
    max_event_tables: String(settings.max_event_tables),
    max_columns: String(settings.max_columns),
    retention_days: settings.retention_days === null ? '' : String(settings.retention_days),
  };
}

/** The PUT body, or the fields that are not whole numbers. An empty cap is left out (the API's
 * default); an empty retention is null (unlimited). Ranges are the API's to judge. */
function bodyOf(draft: Draft): { body: Partial<WarehouseSettings>; errors: FieldErrors } {
  const body: Partial<WarehouseSettings> = {};
  const errors: FieldErrors = {};
  for (const { name } of FIELDS) {
    const text = draft[name].trim();
    if (text === '') {
      if (name === 'retention_days') body.retention_days = null;
    } else if (/^\d+$/.test(text)) {
      body[name] = Number(text);
    } else {
      errors[name] = 'Enter a whole number of 0 or more.';
    }
  }
  return { body, errors };
}

export function WarehouseSettingsForm(props: { api: Api; settings: WarehouseSettings; onSaved: (answer: Warehouse) => void }) {
  const { api } = props;
  // What the user typed; until then, the saved settings.
  const [draft, setDraft] = useState<Draft | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [said, setSaid] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const current = draft ?? draftOf(props.settings);

  const save = async (event: Event) => {
    event.preventDefault();
    setSaid(null);
    const { body, errors: local } = bodyOf(current);
    setErrors(local);
    if (Object.keys(local).length > 0) {
      setSaid({ kind: 'error', text: 'Not saved: correct the fields marked.' });
      return;
    }
    setBusy(true);
    try {
      const answer = await api.put<Warehouse>('/warehouse/settings', body);
      setDraft(null);
      props.onSaved(answer);
      setSaid({ kind: 'success', text: 'Saved: the views follow at the next sync.' });
    } catch (err) {
      const found = err instanceof ApiError && err.status === 400 ? errorsOf(err.field, err.message, err.details) : {};
      const placed = FIELDS.some((f) => found[f.name]);
      setErrors(placed ? found : {});
      setSaid({ kind: 'error', text: placed ? 'Not saved: correct the fields marked.' : messageOf(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="stack warehouse-settings" onSubmit={save} noValidate aria-labelledby="warehouse-settings-title">
      <h3 id="warehouse-settings-title">Settings</h3>
      <div class="row">
        {FIELDS.map(({ name, label, help }) => {
          const id = `warehouse-${name.replace(/_/g, '-')}`;
          const error = errors[name];
          return (
            <div class="field grow" key={name}>
              <label for={id}>{label}</label>
              <input
                id={id}
                inputMode="numeric"
                autoComplete="off"
                value={current[name]}
                aria-invalid={error ? true : undefined}
                aria-describedby={error ? `${id}-error ${id}-help` : `${id}-help`}
                onInput={(e) => { setSaid(null); setDraft({ ...current, [name]: (e.currentTarget as HTMLInputElement).value }); }}
              />
              {error ? <p class="field-error" id={`${id}-error`} role="alert">{error}</p> : null}
              <p class="help" id={`${id}-help`}>{help}</p>
            </div>
          );
        })}
      </div>
      <div class="button-row">
        <button type="submit" disabled={busy}>Save warehouse settings</button>
        {busy ? <span class="muted" role="status">Saving…</span> : null}
      </div>
      {said ? <Notice kind={said.kind}>{said.text}</Notice> : null}
    </form>
  );
}
