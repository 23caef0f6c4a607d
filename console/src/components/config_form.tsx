// A destination's config form, rendered from its type's JSON Schema (GET /destination-types):
// the schema the API validates with, so the form offers exactly what the API takes. Secrets are
// write-only: shown as set or not set, and sent only when the user types a new value.

import type { ComponentChildren } from 'preact';

import type { JsonSchema } from '../types';

/** What the user typed, per config field; `headers`-like maps as rows. Strings throughout: the
 * schema's type converts them when the config is built. */
export interface ConfigDraft {
  values: Record<string, string>;
  maps: Record<string, { key: string; value: string }[]>;
}

export type FieldErrors = Record<string, string>;

// Words the API's field names spell in lower case that read better as acronyms.
const ACRONYMS: Record<string, string> = { url: 'URL', api: 'API', id: 'ID', gdpr: 'GDPR', http: 'HTTP' };

export function fieldLabel(name: string): string {
  const words = name.split('_').map((word) => ACRONYMS[word] ?? word);
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The schema of a property without its `null` alternative (optional fields are X | null). */
function concrete(schema: JsonSchema): { schema: JsonSchema; nullable: boolean } {
  if (!schema.anyOf) return { schema, nullable: false };
  const others = schema.anyOf.filter((option) => option.type !== 'null');
  return { schema: { ...others[0], title: schema.title, default: schema.default }, nullable: others.length < schema.anyOf.length };
}

function isSecret(schema: JsonSchema): boolean {
  return schema.writeOnly === true;
}

function isMap(schema: JsonSchema): boolean {
  return schema.type === 'object' && typeof schema.additionalProperties === 'object' && isScalar(schema.additionalProperties);
}

function isScalar(schema: JsonSchema): boolean {
  return ['string', 'integer', 'number', 'boolean'].includes(schema.type ?? '') || schema.enum !== undefined;
}

/** A list of scalars, typed as a comma-separated line. */
function isList(schema: JsonSchema): boolean {
  return schema.type === 'array' && schema.items !== undefined && isScalar(schema.items);
}

/** Anything else (nested objects, lists of objects): typed as JSON. */
function isJson(schema: JsonSchema): boolean {
  return !isScalar(schema) && !isMap(schema) && !isList(schema);
}

function typed(schema: JsonSchema, text: string): { value?: unknown; error?: string } {
  if (schema.type === 'integer' || schema.type === 'number') {
    const value = Number(text);
    if (!Number.isFinite(value) || (schema.type === 'integer' && !Number.isInteger(value))) {
      return { error: schema.type === 'integer' ? 'must be a whole number' : 'must be a number' };
    }
    return { value };
  }
  if (schema.type === 'boolean') return { value: text === 'true' };
  return { value: text };
}

function constraints(schema: JsonSchema): string {
  const parts: string[] = [];
  if (schema.minLength !== undefined && schema.maxLength !== undefined) parts.push(`${schema.minLength}–${schema.maxLength} characters`);
  else if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} characters`);
  if (schema.minimum !== undefined && schema.maximum !== undefined) parts.push(`${schema.minimum} to ${schema.maximum}`);
  if (schema.pattern) parts.push(`pattern ${schema.pattern}`);
  if (schema.default !== undefined && schema.default !== null && isScalar(schema)) parts.push(`default ${String(schema.default)}`);
  if (isList(schema)) parts.push('separate values with commas');
  if (isJson(schema)) parts.push('JSON');
  return [schema.description, parts.join(' · ')].filter(Boolean).join(' — ');
}

/** A draft holding a destination's public config (secrets are never known, so they start empty). */
export function draftOf(schema: JsonSchema, config: Record<string, unknown>): ConfigDraft {
  const values: Record<string, string> = {};
  const maps: Record<string, { key: string; value: string }[]> = {};
  for (const [name, raw] of Object.entries(schema.properties ?? {})) {
    const { schema: property } = concrete(raw);
    const current = config[name];
    if (isMap(property)) {
      const secret = isSecret(property.additionalProperties as JsonSchema);
      maps[name] =
        !secret && current && typeof current === 'object'
          ? Object.entries(current as Record<string, unknown>).map(([key, value]) => ({ key, value: String(value) }))
          : [];
    } else if (isSecret(property)) {
      values[name] = '';
    } else if (isList(property)) {
      values[name] = Array.isArray(current) ? current.map(String).join(', ') : '';
    } else if (isJson(property)) {
      values[name] = current === undefined || current === null ? '' : JSON.stringify(current, null, 2);
    } else {
      values[name] = current === undefined || current === null ? '' : String(current);
    }
  }
  return { values, maps };
}

/** The config to send: typed by the schema; empty optional fields left out (they take their
 * default), secrets only when typed (an update that omits one keeps it). */
export function configOf(schema: JsonSchema, draft: ConfigDraft): { config: Record<string, unknown>; errors: FieldErrors } {
  const config: Record<string, unknown> = {};
  const errors: FieldErrors = {};
  for (const [name, raw] of Object.entries(schema.properties ?? {})) {
    const { schema: property } = concrete(raw);
    if (isMap(property)) {
      const rows = (draft.maps[name] ?? []).filter((row) => row.key.trim() || row.value);
      if (rows.length === 0) continue;
      const entries: Record<string, string> = {};
      for (const row of rows) {
        if (!row.key.trim()) errors[`config.${name}`] = 'every value needs a name';
        entries[row.key.trim()] = row.value;
      }
      config[name] = entries;
      continue;
    }
    const text = (draft.values[name] ?? '').trim();
    if (!text) continue;
    if (isList(property)) {
      const items = text.split(',').map((item) => item.trim()).filter(Boolean).map((item) => typed(property.items as JsonSchema, item));
      const bad = items.find((item) => item.error);
      if (bad) errors[`config.${name}`] = `every value ${bad.error}`;
      else config[name] = items.map((item) => item.value);
    } else if (isJson(property)) {
      try {
        config[name] = JSON.parse(text);
      } catch {
        errors[`config.${name}`] = 'must be valid JSON';
      }
    } else {
      const { value, error } = typed(property, text);
      if (error) errors[`config.${name}`] = error;
      else config[name] = value;
    }
  }
  return { config, errors };
}

export function ConfigFields(props: {
  idPrefix: string;
  schema: JsonSchema;
  draft: ConfigDraft;
  secretsSet: string[];
  editing: boolean;
  errors: FieldErrors;
  onChange: (draft: ConfigDraft) => void;
}) {
  const { schema, draft, errors } = props;
  const required = new Set(schema.required ?? []);
  const setValue = (name: string, value: string) => props.onChange({ ...draft, values: { ...draft.values, [name]: value } });
  const setRows = (name: string, rows: { key: string; value: string }[]) => props.onChange({ ...draft, maps: { ...draft.maps, [name]: rows } });

  return (
    <div class="config-fields">
      {Object.entries(schema.properties ?? {}).map(([name, raw]) => {
        const { schema: property, nullable } = concrete(raw);
        const id = `${props.idPrefix}-${name}`;
        const error = errors[`config.${name}`];
        const errorId = `${id}-error`;
        const isRequired = required.has(name) && !nullable;
        const label = `${fieldLabel(name)}${isRequired ? '' : ' (optional)'}`;
        const help = constraints(property);
        const errorText = error ? <p class="field-error" id={errorId} role="alert">{fieldLabel(name)}: {error}</p> : null;
        if (isMap(property)) {
          const secret = isSecret(property.additionalProperties as JsonSchema);
          return (
            <MapField
              key={name}
              id={id}
              label={label}
              secret={secret}
              set={props.secretsSet.includes(name)}
              editing={props.editing}
              rows={draft.maps[name] ?? []}
              onChange={(rows) => setRows(name, rows)}
              error={errorText}
              errorId={error ? errorId : undefined}
            />
          );
        }
        const secret = isSecret(property);
        const described = [help ? `${id}-help` : '', error ? errorId : '', secret ? `${id}-state` : ''].filter(Boolean).join(' ') || undefined;
        let control;
        if (property.enum) {
          control = (
            <select id={id} value={draft.values[name] ?? ''} aria-invalid={error ? true : undefined} aria-describedby={described}
              onChange={(e) => setValue(name, (e.currentTarget as HTMLSelectElement).value)}>
              {!isRequired || property.default === undefined ? <option value="">{property.default !== undefined ? `Default (${String(property.default)})` : '—'}</option> : null}
              {property.enum.map((option) => <option key={String(option)} value={String(option)}>{String(option)}</option>)}
            </select>
          );
        } else if (property.type === 'boolean') {
          control = (
            <select id={id} value={draft.values[name] ?? ''} aria-invalid={error ? true : undefined} aria-describedby={described}
              onChange={(e) => setValue(name, (e.currentTarget as HTMLSelectElement).value)}>
              <option value="">{property.default !== undefined && property.default !== null ? `Default (${property.default ? 'yes' : 'no'})` : '—'}</option>
              <option value="true">yes</option>
              <option value="false">no</option>
            </select>
          );
        } else if (isJson(property) && !secret) {
          control = (
            <textarea id={id} rows={4} spellcheck={false} value={draft.values[name] ?? ''} aria-invalid={error ? true : undefined} aria-describedby={described}
              onInput={(e) => setValue(name, (e.currentTarget as HTMLTextAreaElement).value)} />
          );
        } else if (secret) {
          const isSet = props.secretsSet.includes(name);
          control = (
            <input id={id} type="password" autoComplete="new-password" value={draft.values[name] ?? ''}
              placeholder={isSet ? 'Set: type a new value to replace it' : 'Not set'}
              aria-invalid={error ? true : undefined} aria-describedby={described}
              onInput={(e) => setValue(name, (e.currentTarget as HTMLInputElement).value)} />
          );
        } else {
          const common = {
            id,
            value: draft.values[name] ?? '',
            spellcheck: false,
            placeholder: property.default !== undefined && property.default !== null ? String(property.default) : undefined,
            'aria-invalid': error ? true : undefined,
            'aria-describedby': described,
            onInput: (e: Event) => setValue(name, (e.currentTarget as HTMLInputElement).value),
          };
          control = property.type === 'integer' || property.type === 'number' ? <input type="number" {...common} /> : <input type="text" {...common} />;
        }
        return (
          <div class="field" key={name}>
            <label for={id}>
              {label}
              {secret ? <SecretState id={`${id}-state`} set={props.secretsSet.includes(name)} editing={props.editing} /> : null}
            </label>
            {control}
            {help ? <p class="help" id={`${id}-help`}>{help}</p> : null}
            {errorText}
          </div>
        );
      })}
    </div>
  );
}

function SecretState(props: { id: string; set: boolean; editing: boolean }) {
  if (!props.editing) return <span class="secret-state muted" id={props.id}> · write-only</span>;
  return (
    <span class={`secret-state ${props.set ? 'secret-set' : 'muted'}`} id={props.id} data-testid="secret-state">
      {' · '}{props.set ? 'set' : 'not set'}
    </span>
  );
}

function MapField(props: {
  id: string;
  label: string;
  secret: boolean;
  set: boolean;
  editing: boolean;
  rows: { key: string; value: string }[];
  onChange: (rows: { key: string; value: string }[]) => void;
  error: ComponentChildren;
  errorId?: string;
}) {
  const { rows } = props;
  const update = (index: number, row: { key: string; value: string }) => props.onChange(rows.map((r, i) => (i === index ? row : r)));
  return (
    <fieldset class="field map-field" aria-describedby={props.errorId}>
      <legend>
        {props.label}
        {props.secret ? <SecretState id={`${props.id}-state`} set={props.set} editing={props.editing} /> : null}
      </legend>
      {props.secret && props.editing && props.set ? (
        <p class="help">Stored values are not shown. Entering any replaces them all; leave empty to keep them.</p>
      ) : null}
      {rows.map((row, index) => (
        <div class="map-row" key={index}>
          <input aria-label={`${props.label}: name ${index + 1}`} value={row.key} spellcheck={false} placeholder="Name"
            onInput={(e) => update(index, { ...row, key: (e.currentTarget as HTMLInputElement).value })} />
          {props.secret ? (
            <input aria-label={`${props.label}: value ${index + 1}`} type="password" autoComplete="new-password" value={row.value} placeholder="Value"
              onInput={(e) => update(index, { ...row, value: (e.currentTarget as HTMLInputElement).value })} />
          ) : (
            <input aria-label={`${props.label}: value ${index + 1}`} type="text" value={row.value} placeholder="Value"
              onInput={(e) => update(index, { ...row, value: (e.currentTarget as HTMLInputElement).value })} />
          )}
          <button type="button" class="secondary small" onClick={() => props.onChange(rows.filter((_, i) => i !== index))}>
            Remove<span class="visually-hidden"> {props.label} {index + 1}</span>
          </button>
        </div>
      ))}
      <div>
        <button type="button" class="secondary small" onClick={() => props.onChange([...rows, { key: '', value: '' }])}>
          Add<span class="visually-hidden"> to {props.label}</span>
        </button>
      </div>
      {props.error}
    </fieldset>
  );
}

/** The API's validation error as field -> message: `field` names the first problem, `details`
 * lists them all ("config.url: must be ...; config.secret: ..."). Nested fields (a header's name)
 * are shown at their top-level config field. */
export function errorsOf(field: string | null, message: string, details: string | null): FieldErrors {
  const errors: FieldErrors = {};
  const place = (path: string, text: string) => {
    const parts = path.split('.');
    const key = parts[0] === 'config' && parts.length > 1 ? `config.${parts[1]}` : parts[0];
    if (!errors[key]) errors[key] = text;
  };
  if (details && details.includes(': ')) {
    for (const item of details.split('; ')) {
      const at = item.indexOf(': ');
      if (at > 0 && /^[\w.-]+$/.test(item.slice(0, at))) place(item.slice(0, at), item.slice(at + 2));
    }
  }
  if (field) {
    const prefix = `${field}: `;
    place(field, message.startsWith(prefix) ? message.slice(prefix.length) : message);
  }
  return errors;
}
