// Consent and bots in the console (docs/PRIVACY.md): a destination's consent categories, the
// events held back from each destination for consent, and a source's privacy settings (IP
// policy, bot policy, cookieless).

import { useState } from 'preact/hooks';

import { type Api, ApiError, messageOf } from '../api';
import { Loading, Notice } from './common';
import { type FieldErrors, errorsOf } from './config_form';
import { plural, visibleText } from '../format';
import { useLoad } from '../hooks';
import type { BotPolicy, ConsentVolumeRow, IpPolicy, SourcePrivacy } from '../types';

// The window of the refusal counts, as the brief of the list says: "(24 h)".
export const REFUSAL_HOURS = 24;

/** The categories typed in `pending` (comma-separated, as pasted from a consent manager's
 * settings) added to `categories`: trimmed, empty ones and repeats left out. */
export function withPending(categories: string[], pending: string): string[] {
  const added = [...categories];
  for (const raw of pending.split(',')) {
    const category = raw.trim();
    if (category && !added.includes(category)) added.push(category);
  }
  return added;
}

/** A destination's consent categories as removable chips and a field to add more (Enter, a
 * comma-separated list, or the button). Text still in the field is added on submit by the form
 * (`withPending`), so a category typed but not added is not lost. */
export function ConsentCategoriesField(props: {
  id: string;
  categories: string[];
  pending: string;
  error?: string;
  onChange: (categories: string[], pending: string) => void;
}) {
  const { id, categories } = props;
  const add = () => props.onChange(withPending(categories, props.pending), '');
  const errorId = `${id}-error`;
  return (
    <fieldset class="field categories-field" aria-describedby={`${id}-help${props.error ? ` ${errorId}` : ''}`}>
      <legend>Consent categories (optional)</legend>
      <p class="help" id={`${id}-help`}>
        Events are delivered here only when every category is granted in <code>context.consent.categoryPreferences</code>{' '}
        (ids such as Advertising or C0004, as your consent manager names them). None: consent is not checked.
      </p>
      {categories.length > 0 ? (
        <ul class="chips" aria-label="Consent categories of this destination" data-testid="consent-chips">
          {categories.map((category) => (
            <li key={category} class="chip">
              <span class="chip-text" title={visibleText(category)}>{visibleText(category)}</span>
              <button type="button" class="chip-remove" aria-label={`Remove category ${visibleText(category)}`}
                onClick={() => props.onChange(categories.filter((c) => c !== category), props.pending)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      <div class="chip-add">
        <input id={id} value={props.pending} maxLength={2000} spellcheck={false} placeholder="Advertising, C0004"
          aria-label="Add consent categories (comma-separated)" aria-invalid={props.error ? true : undefined}
          onInput={(e) => props.onChange(categories, (e.currentTarget as HTMLInputElement).value)}
          onKeyDown={(e) => {
            // Enter adds the category instead of submitting the whole form.
            if (e.key === 'Enter') {
              e.preventDefault();
              add();
            }
          }} />
        <button type="button" class="secondary small" disabled={!props.pending.trim()} onClick={add}>Add category</button>
      </div>
      {props.error ? <p class="field-error" id={errorId} role="alert">Consent categories: {props.error}</p> : null}
    </fieldset>
  );
}

/** Events held back from each destination for consent over the last 24 h: one request for all
 * destinations (summed per destination), not one per row. */
export function useConsentRefusals(api: Api) {
  const loaded = useLoad(
    (signal) => api.get<ConsentVolumeRow[]>('/events/consent-volume', { hours: REFUSAL_HOURS }, signal),
    [api],
  );
  const totals = new Map<string, number>();
  for (const row of loaded.data ?? []) totals.set(row.destination_id, (totals.get(row.destination_id) ?? 0) + row.event_count);
  return { totals: loaded.data ? totals : null, error: loaded.error, reload: loaded.reload };
}

/** "312 events held back for consent (24 h)". */
export function refusalText(count: number): string {
  return `${plural(count, 'event')} held back for consent (${REFUSAL_HOURS} h)`;
}

const IP_POLICIES: { value: IpPolicy; label: string; help: string }[] = [
  { value: 'keep', label: 'Keep', help: 'context.ip is stored as received.' },
  { value: 'truncate', label: 'Truncate', help: 'IPv4 cut to its /24, IPv6 to its /48, before anything is stored.' },
  { value: 'remove', label: 'Remove', help: 'context.ip is removed before anything is stored.' },
];

const BOT_POLICIES: { value: BotPolicy; label: string; help: string }[] = [
  { value: 'keep', label: 'Keep', help: 'Bots’ events are stored and forwarded, tagged context.bot = true.' },
  { value: 'store_only', label: 'Store only', help: 'Bots’ events are stored and queryable, never forwarded.' },
  { value: 'drop', label: 'Drop', help: 'Bots’ events are recorded as dropped with the reason, never stored.' },
];

/** A source's privacy settings: its IP policy, bot policy and cookieless mode, saved whole. */
export function SourcePrivacyPanel(props: { api: Api; sourceId: string; sourceName: string }) {
  const { api, sourceId } = props;
  const path = `/event-keys/${encodeURIComponent(sourceId)}/privacy`;
  const loaded = useLoad((signal) => api.get<SourcePrivacy>(path, undefined, signal), [api, path]);
  // The form's values once the user changed one; until then, the loaded settings.
  const [draft, setDraft] = useState<SourcePrivacy | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [said, setSaid] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const current = draft ?? loaded.data;
  const id = `privacy-${sourceId}`;

  const change = (changed: Partial<SourcePrivacy>) => {
    if (!current) return;
    setSaid(null);
    setDraft({ ...current, ...changed });
  };

  const save = async (event: Event) => {
    event.preventDefault();
    if (!current) return;
    setBusy(true);
    setSaid(null);
    setErrors({});
    try {
      const saved = await api.put<SourcePrivacy>(path, {
        ip_policy: current.ip_policy,
        bot_policy: current.bot_policy,
        cookieless: current.cookieless,
      });
      setDraft(saved);
      setSaid({ kind: 'success', text: 'Saved: ingest and process apply it within 10 s.' });
    } catch (err) {
      if (err instanceof ApiError && err.status === 400 && err.field) setErrors(errorsOf(err.field, err.message, err.details));
      setSaid({ kind: 'error', text: messageOf(err) });
    } finally {
      setBusy(false);
    }
  };

  const ipHelp = IP_POLICIES.find((p) => p.value === current?.ip_policy)?.help;
  const botHelp = BOT_POLICIES.find((p) => p.value === current?.bot_policy)?.help;
  return (
    <section class="card stack" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`} class="title-line" title={visibleText(props.sourceName)}>
        Privacy of “{visibleText(props.sourceName)}”
      </h2>
      {loaded.error ? <Notice kind="error">{loaded.error}</Notice> : null}
      {!current && !loaded.error ? <Loading label="Loading the privacy settings…" /> : null}
      {current ? (
        <form class="stack privacy-form" onSubmit={save}>
          <div class="row">
            <div class="field grow">
              <label for={`${id}-ip`}>IP policy</label>
              <select id={`${id}-ip`} value={current.ip_policy} aria-describedby={`${id}-ip-help`}
                onChange={(e) => change({ ip_policy: (e.currentTarget as HTMLSelectElement).value as IpPolicy })}>
                {IP_POLICIES.map((p) => <option key={p.value} value={p.value}>{p.label}</option>)}
              </select>
              <p class="help" id={`${id}-ip-help`}>{ipHelp}</p>
              {errors.ip_policy ? <p class="field-error" role="alert">IP policy: {errors.ip_policy}</p> : null}
            </div>
            <div class="field grow">
              <label for={`${id}-bot`}>Bot policy</label>
              <select id={`${id}-bot`} value={current.bot_policy} aria-describedby={`${id}-bot-help`}
                onChange={(e) => change({ bot_policy: (e.currentTarget as HTMLSelectElement).value as BotPolicy })}>
                {BOT_POLICIES.map((p) => <option key={p.value} value={p.value}>{p.label}</option>)}
              </select>
              <p class="help" id={`${id}-bot-help`}>{botHelp} Bots are recognised by their user agent (crawlerdetect); server SDKs never are.</p>
              {errors.bot_policy ? <p class="field-error" role="alert">Bot policy: {errors.bot_policy}</p> : null}
            </div>
          </div>
          <div class="field inline">
            <input id={`${id}-cookieless`} type="checkbox" role="switch" checked={current.cookieless} aria-describedby={`${id}-cookieless-help`}
              onChange={(e) => change({ cookieless: (e.currentTarget as HTMLInputElement).checked })} />
            <label for={`${id}-cookieless`}>Cookieless</label>
          </div>
          <p class="help" id={`${id}-cookieless-help`}>
            The anonymousId is replaced, server-side, by a daily-rotating hash of the IP address and user agent.
          </p>
          {errors.cookieless ? <p class="field-error" role="alert">Cookieless: {errors.cookieless}</p> : null}
          <div class="button-row">
            <button type="submit" disabled={busy}>Save privacy settings<span class="visually-hidden"> of {visibleText(props.sourceName)}</span></button>
            {busy ? <span class="muted" role="status">Saving…</span> : null}
          </div>
          {said ? <Notice kind={said.kind}>{said.text}</Notice> : null}
        </form>
      ) : null}
    </section>
  );
}
