// A webhook source's panel on the Sources page (issue 26, docs/WEBHOOKS.md): the URL a provider
// posts to, and how its requests are verified and mapped to events. Shown instead of the SDK
// snippets, since a webhook source's key is refused by the SDK endpoints. The secret is
// write-only: shown as set or not set, sent only when a new value is typed.

import { useEffect, useState } from 'preact/hooks';

import { ApiError, type Api, messageOf } from '../api';
import { visibleText } from '../format';
import { useLoad } from '../hooks';
import { ingestOrigin } from '../ingest_origin';
import type { EventSource, SourceType, Transformation } from '../types';
import { CopyButton, Notice } from './common';
import { type FieldErrors, errorsOf } from './config_form';
import { optionLabel } from './lists';
import { Time } from './text';

// Short labels: a select is as wide as its longest option, and this one sits on a phone's line.
export const SOURCE_TYPES: { value: SourceType; label: string }[] = [
  { value: 'server', label: 'Server' },
  { value: 'javascript', label: 'Website' },
  { value: 'mobile', label: 'Mobile app' },
  { value: 'webhook', label: 'Webhook' },
];

export type WebhookProvider = 'none' | 'stripe' | 'github' | 'shopify' | 'hmac';
export type EventNameFrom = 'path' | 'header' | 'fixed';

/** `WebhookSettings` of shared/domain/webhooks.py as answered: without the secret. */
export interface WebhookSettings {
  event_name_from: EventNameFrom;
  event_name: string;
  user_id_path: string | null;
  transformation_id: string | null;
  signature: WebhookProvider;
  signature_header: string | null;
  tolerance_seconds: number;
}

/** GET/PUT /event-keys/{id}/webhook. */
export interface SourceWebhook {
  source_id: string;
  url_path: string;
  settings: WebhookSettings;
  secret_set: boolean;
  updated_at: string | null;
  /** Requests refused for a bad or missing signature. */
  signature_failures?: number;
}

/** POST /event-keys/{id}/test-webhook's body: the request to send, signed by the server (no
 * body: a sample JSON object). */
export interface WebhookTestRequest {
  body?: unknown;
  headers?: Record<string, string>;
}

const PROVIDERS: { value: WebhookProvider; label: string }[] = [
  { value: 'none', label: 'None: accept any request with the URL' },
  { value: 'stripe', label: 'Stripe (Stripe-Signature)' },
  { value: 'github', label: 'GitHub (X-Hub-Signature-256)' },
  { value: 'shopify', label: 'Shopify (X-Shopify-Hmac-Sha256)' },
  { value: 'hmac', label: 'HMAC-SHA256 in a header you name' },
];

const NAME_SOURCES: { value: EventNameFrom; label: string; field: string; placeholder: string; help: string }[] = [
  { value: 'fixed', label: 'A fixed name', field: 'Event name', placeholder: 'Webhook Received', help: 'Every request becomes a track event of this name.' },
  { value: 'path', label: 'A field of the body', field: 'JSON path to the name', placeholder: 'type', help: 'A dotted path in the body, e.g. "type" for Stripe ("invoice.paid").' },
  { value: 'header', label: 'A header', field: 'Header holding the name', placeholder: 'X-GitHub-Event', help: 'E.g. X-GitHub-Event ("push"), X-Shopify-Topic ("orders/create").' },
];

// The fields of the PUT body, in the order the form shows them: an API error naming one of them
// is shown under it, any other above the Save button.
const FIELDS = ['event_name_from', 'event_name', 'user_id_path', 'transformation_id', 'signature', 'signature_header', 'secret', 'tolerance_seconds'];

export function WebhookPanel(props: {
  api: Api;
  source: EventSource;
  /** Sends a test request and opens Live on the source; what went wrong otherwise. */
  onTest: (request: WebhookTestRequest) => Promise<string | null>;
}) {
  const { api, source } = props;
  const path = `/event-keys/${encodeURIComponent(source.id)}/webhook`;
  const webhook = useLoad((signal) => api.get<SourceWebhook>(path, undefined, signal), [api, path]);
  // Every transformation of the workspace, for the picker (a handful, like ForwardingRules').
  const transformations = useLoad((signal) => api.get<Transformation[]>('/event-transformations', undefined, signal), [api]);
  const [saved, setSaved] = useState<SourceWebhook | null>(null);
  const current = saved ?? webhook.data;
  // Said outside the form, which starts afresh from each saved answer.
  const [savedNotice, setSavedNotice] = useState(false);
  const url = current ? `${ingestOrigin()}${current.url_path}` : '';

  return (
    <section class="card" aria-labelledby={`webhook-title-${source.id}`}>
      <h2 id={`webhook-title-${source.id}`} class="title-line" title={visibleText(source.name)}>
        Webhooks to “{visibleText(source.name)}”
      </h2>
      {source.status !== 'active' ? <Notice kind="info">This source is revoked: its webhook URL is refused.</Notice> : null}
      {webhook.error ? <Notice kind="error">{webhook.error}</Notice> : null}
      {transformations.error ? <Notice kind="error">{transformations.error}</Notice> : null}
      {current ? (
        <div class="stack">
          <div>
            <h3>Webhook URL</h3>
            <span class="key-cell">
              <code class="key" data-testid="webhook-url" title={url}>{url}</code>
              <CopyButton text={url} label="Copy URL" />
            </span>
            <p class="help">
              Give it to the service that sends the webhooks (docs/WEBHOOKS.md shows Stripe, GitHub and Shopify).
              It holds the source's write key, so treat it as a credential; services that cannot put it in the path may
              post to <code>/v1/webhook?writeKey=…</code> instead.
            </p>
          </div>
          <p class="muted" data-testid="webhook-stats">
            Settings updated <Time iso={current.updated_at} />
            {current.signature_failures !== undefined ? <> · requests refused for a bad signature: {current.signature_failures}</> : null}
          </p>
          <WebhookForm
            key={`${current.source_id}-${current.updated_at ?? ''}`}
            api={api}
            path={path}
            webhook={current}
            transformations={transformations.data ?? []}
            onSaved={(answer) => {
              setSaved(answer);
              setSavedNotice(true);
            }}
            onEdit={() => setSavedNotice(false)}
          />
          {savedNotice ? <Notice kind="success">Webhook settings saved.</Notice> : null}
          {source.status === 'active' ? <TestRequestForm prefix={`webhook-${source.id}-test`} onTest={props.onTest} /> : null}
        </div>
      ) : webhook.loading ? (
        <p class="muted" role="status">Loading the webhook settings…</p>
      ) : null}
    </section>
  );
}

function WebhookForm(props: {
  api: Api;
  path: string;
  webhook: SourceWebhook;
  transformations: Transformation[];
  onSaved: (webhook: SourceWebhook) => void;
  onEdit: () => void;
}) {
  const { webhook } = props;
  const prefix = `webhook-${webhook.source_id}`;
  const settings = webhook.settings;
  const [nameFrom, setNameFrom] = useState<EventNameFrom>(settings.event_name_from);
  const [eventName, setEventName] = useState(settings.event_name);
  const [userIdPath, setUserIdPath] = useState(settings.user_id_path ?? '');
  const [transformationId, setTransformationId] = useState(settings.transformation_id ?? '');
  const [signature, setSignature] = useState<WebhookProvider>(settings.signature);
  const [signatureHeader, setSignatureHeader] = useState(settings.signature_header ?? '');
  const [tolerance, setTolerance] = useState(String(settings.tolerance_seconds));
  // Never prefilled: the stored secret is not known to the console.
  const [secret, setSecret] = useState('');
  const [clearSecret, setClearSecret] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [outcome, setOutcome] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const transformations = [...props.transformations].sort((a, b) => a.name.localeCompare(b.name));
  const naming = NAME_SOURCES.find((option) => option.value === nameFrom) ?? NAME_SOURCES[0];

  // A typed secret and "remove" exclude each other: typing one unticks the other.
  useEffect(() => {
    if (secret) setClearSecret(false);
  }, [secret]);

  const submit = async (event: Event) => {
    event.preventDefault();
    setOutcome(null);
    const local: FieldErrors = {};
    if (!eventName.trim()) local.event_name = 'must not be empty';
    const seconds = Number(tolerance);
    if (signature === 'stripe' && (!Number.isInteger(seconds) || seconds < 1)) local.tolerance_seconds = 'must be a whole number of seconds, at least 1';
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    const body: Record<string, unknown> = {
      event_name_from: nameFrom,
      event_name: eventName.trim(),
      user_id_path: userIdPath.trim() || null,
      transformation_id: transformationId || null,
      signature,
      signature_header: signature === 'hmac' ? signatureHeader.trim() || null : null,
    };
    if (signature === 'stripe') body.tolerance_seconds = seconds;
    // Omitted, the stored secret is kept; null removes it.
    if (secret) body.secret = secret;
    else if (clearSecret) body.secret = null;
    setBusy(true);
    try {
      const answer = await props.api.put<SourceWebhook>(props.path, body);
      setSecret('');
      setErrors({});
      props.onSaved(answer);
    } catch (err) {
      if (err instanceof ApiError && err.field) {
        const found = errorsOf(err.field, err.message, err.details);
        if (Object.keys(found).some((key) => FIELDS.includes(key))) setErrors(found);
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
  const value = (e: Event) => (e.currentTarget as HTMLInputElement | HTMLSelectElement).value;

  return (
    // `destination-form`: the console's form styles (width, invalid fields marked).
    <form class="stack destination-form" onSubmit={submit} onInput={props.onEdit} noValidate aria-label="Webhook settings">
      <h3>How a request becomes events</h3>
      <div class="config-fields">
        <div class="field">
          <label for={`${prefix}-transformation`}>Transformation</label>
          <select id={`${prefix}-transformation`} value={transformationId} {...invalid('transformation_id')} onChange={(e) => setTransformationId(value(e))}>
            <option value="">None: one track event per request</option>
            {transformations.map((t) => (
              <option key={t.id} value={t.id} title={visibleText(t.name)}>
                {optionLabel(t.name)}{t.status === 'active' ? '' : ` (${t.status})`}
              </option>
            ))}
          </select>
          <p class="help">
            {transformationId
              ? 'Its function transform(request) gets {headers, query, body} and returns Segment calls, or null to ignore the request: the fields below are not used.'
              : 'The body becomes the properties of a track event named as below.'}
          </p>
          {error('transformation_id')}
        </div>
        <div class="field">
          <label for={`${prefix}-name-from`}>Event name from</label>
          <select id={`${prefix}-name-from`} value={nameFrom} {...invalid('event_name_from')} onChange={(e) => setNameFrom(value(e) as EventNameFrom)}>
            {NAME_SOURCES.map((option) => <option key={option.value} value={option.value}>{option.label}</option>)}
          </select>
          {error('event_name_from')}
        </div>
        <div class="field">
          <label for={`${prefix}-event-name`}>{naming.field}</label>
          <input id={`${prefix}-event-name`} value={eventName} maxLength={200} spellcheck={false} placeholder={naming.placeholder}
            {...invalid('event_name')} onInput={(e) => setEventName(value(e))} />
          <p class="help">{naming.help}</p>
          {error('event_name')}
        </div>
        <div class="field">
          <label for={`${prefix}-user-id-path`}>User id path (optional)</label>
          <input id={`${prefix}-user-id-path`} value={userIdPath} maxLength={200} spellcheck={false} placeholder="data.object.customer"
            {...invalid('user_id_path')} onInput={(e) => setUserIdPath(value(e))} />
          <p class="help">A dotted path in the body to the user id; without one, events are anonymous.</p>
          {error('user_id_path')}
        </div>
      </div>
      <h3>Signature verification</h3>
      <div class="config-fields">
        <div class="field">
          <label for={`${prefix}-signature`}>Signature</label>
          <select id={`${prefix}-signature`} value={signature} {...invalid('signature')} onChange={(e) => setSignature(value(e) as WebhookProvider)}>
            {PROVIDERS.map((option) => <option key={option.value} value={option.value}>{option.label}</option>)}
          </select>
          <p class="help">A request whose signature does not verify is refused (401) and counted.</p>
          {error('signature')}
        </div>
        {signature === 'hmac' ? (
          <div class="field">
            <label for={`${prefix}-signature-header`}>Signature header</label>
            <input id={`${prefix}-signature-header`} value={signatureHeader} maxLength={100} spellcheck={false} placeholder="X-Signature"
              {...invalid('signature_header')} onInput={(e) => setSignatureHeader(value(e))} />
            <p class="help">The header holding the hex HMAC-SHA256 of the raw body.</p>
            {error('signature_header')}
          </div>
        ) : null}
        {signature === 'stripe' ? (
          <div class="field">
            <label for={`${prefix}-tolerance`}>Timestamp tolerance (seconds)</label>
            <input id={`${prefix}-tolerance`} type="number" min={1} max={86400} value={tolerance}
              {...invalid('tolerance_seconds')} onInput={(e) => setTolerance(value(e))} />
            <p class="help">Older signatures are refused, so a captured request cannot be replayed later.</p>
            {error('tolerance_seconds')}
          </div>
        ) : null}
        <div class="field">
          <label for={`${prefix}-secret`}>
            Signing secret
            <span class={`secret-state ${webhook.secret_set ? 'secret-set' : 'muted'}`} id={`${prefix}-secret-state`} data-testid="secret-state">
              {' · '}{webhook.secret_set ? 'set' : 'not set'}
            </span>
          </label>
          <input id={`${prefix}-secret`} type="password" autoComplete="new-password" value={secret}
            placeholder={webhook.secret_set ? 'Set: type a new value to replace it' : 'Not set'}
            aria-describedby={[`${prefix}-secret-state`, `${prefix}-secret-help`, errors.secret ? `${prefix}-secret-error` : ''].filter(Boolean).join(' ')}
            aria-invalid={errors.secret ? true : undefined}
            onInput={(e) => setSecret(value(e))} />
          <p class="help" id={`${prefix}-secret-help`}>Write-only: never shown again. Left empty, the stored one is kept.</p>
          {error('secret')}
          {webhook.secret_set ? (
            <div class="field inline">
              <input id={`${prefix}-clear-secret`} type="checkbox" checked={clearSecret} disabled={Boolean(secret)}
                onChange={(e) => setClearSecret((e.currentTarget as HTMLInputElement).checked)} />
              <label for={`${prefix}-clear-secret`}>Remove the stored secret</label>
            </div>
          ) : null}
        </div>
      </div>
      <div class="button-row">
        <button type="submit" disabled={busy}>Save webhook settings</button>
        {busy ? <span class="muted" role="status">Saving…</span> : null}
      </div>
      {outcome ? <Notice kind={outcome.kind}>{outcome.text}</Notice> : null}
    </form>
  );
}

/** A test request of one's own: a body and headers such as the provider sends (X-GitHub-Event
 * for a source named by that header), which the sample request has not. */
function TestRequestForm(props: { prefix: string; onTest: (request: WebhookTestRequest) => Promise<string | null> }) {
  const { prefix } = props;
  const [body, setBody] = useState('');
  const [headers, setHeaders] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setFailure(null);
    const found: FieldErrors = {};
    const request: WebhookTestRequest = {};
    if (body.trim()) {
      try {
        request.body = JSON.parse(body);
      } catch (err) {
        found.body = `is not JSON: ${messageOf(err)}`;
      }
    }
    const lines = headers.split('\n').map((line) => line.trim()).filter(Boolean);
    if (lines.length > 0) {
      request.headers = {};
      lines.forEach((line, index) => {
        const colon = line.indexOf(':');
        if (colon <= 0) found.headers = `line ${index + 1}: write it as Name: value`;
        else if (request.headers) request.headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
      });
    }
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    setBusy(true);
    // Success opens the Live debugger; only a failure comes back to be shown here.
    setFailure(await props.onTest(request));
    setBusy(false);
  };

  const error = (field: string) =>
    errors[field] ? <p class="field-error" id={`${prefix}-${field}-error`} role="alert">{errors[field]}</p> : null;
  const invalid = (field: string) => (errors[field] ? { 'aria-invalid': true, 'aria-describedby': `${prefix}-${field}-error` } : {});

  return (
    <form class="stack destination-form" onSubmit={submit} noValidate aria-label="Test request">
      <h3>Test request</h3>
      <p class="help">
        Sent through this source's URL as the provider would send it, signed with the stored secret, then shown in the
        Live debugger. Left empty, the body is a sample JSON object.
      </p>
      <div class="config-fields">
        <div class="field">
          <label for={`${prefix}-body`}>Body (JSON, optional)</label>
          <textarea id={`${prefix}-body`} class="code-input" rows={5} spellcheck={false} value={body}
            placeholder={'{"type": "invoice.paid", "data": {"object": {"customer": "cus_123"}}}'}
            {...invalid('body')} onInput={(e) => setBody((e.currentTarget as HTMLTextAreaElement).value)} />
          {error('body')}
        </div>
        <div class="field">
          <label for={`${prefix}-headers`}>Headers (optional, one Name: value a line)</label>
          <textarea id={`${prefix}-headers`} class="code-input" rows={5} spellcheck={false} value={headers}
            placeholder={'X-GitHub-Event: push'}
            {...invalid('headers')} onInput={(e) => setHeaders((e.currentTarget as HTMLTextAreaElement).value)} />
          {error('headers')}
        </div>
      </div>
      <div class="button-row">
        <button type="submit" class="secondary" disabled={busy}>Send this test request</button>
        {busy ? <span class="muted" role="status">Sending, then waiting for its events…</span> : null}
      </div>
      {failure ? <Notice kind="error">{failure}</Notice> : null}
    </form>
  );
}
