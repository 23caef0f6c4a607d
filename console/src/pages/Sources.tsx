import { useState } from 'preact/hooks';

import { ApiError, type Api, messageOf } from '../api';
import { CopyButton, Notice, StatusBadge } from '../components/common';
import { type Column, ListControls, PagedTable, usePagedList } from '../components/lists';
import { Name, Time } from '../components/text';
import { SourcePrivacyPanel } from '../components/privacy';
import { SOURCE_TYPES, WebhookPanel, type WebhookTestRequest } from '../components/webhook_settings';
import { visibleText } from '../format';
import { ingestOrigin } from '../ingest_origin';
import { openLive } from '../navigation';
import { SNIPPET_LABELS, snippet, type SnippetKind } from '../snippets';
import type { EventSource, EventTrace, SourceType } from '../types';

// The outcome of the last action on a source, shown in a row under it (not at the top of a
// list that may be thousands of pixels long).
interface RowNotice {
  id: string;
  kind: 'error' | 'success' | 'info';
  text: string;
}

export function SourcesPage(props: { api: Api }) {
  const { api } = props;
  const sources = usePagedList<EventSource>(api, '/event-keys', { visibleStatus: 'active' });
  const [name, setName] = useState('');
  const [sourceType, setSourceType] = useState<SourceType>('server');
  const [busy, setBusy] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);
  const [notice, setNotice] = useState<RowNotice | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  // The source whose privacy settings are open under its row (beside its snippet, if open too).
  const [privacyOf, setPrivacyOf] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);

  const create = async (event: Event) => {
    event.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    setCreateError(null);
    try {
      const source = await api.post<EventSource>('/event-keys', { name: name.trim(), type: sourceType });
      setName('');
      sources.pin(source);
      setSelected(source.id);
      const below = source.type === 'webhook' ? 'Its webhook URL and settings are below.' : 'Its snippet is below.';
      setNotice({ id: source.id, kind: 'success', text: `Source “${visibleText(source.name)}” created. ${below}` });
    } catch (err) {
      setCreateError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (source: EventSource) => {
    setConfirming(null);
    try {
      const revoked = await api.delete<EventSource>(`/event-keys/${encodeURIComponent(source.id)}`);
      sources.update(revoked);
      setNotice({ id: source.id, kind: 'success', text: `Source “${visibleText(source.name)}” revoked: its write key is refused within 10 s.` });
    } catch (err) {
      setNotice({ id: source.id, kind: 'error', text: messageOf(err) });
    }
  };

  /** Sends a test event (or, to a webhook source, a test request: `request` is the webhook
   * panel's own body and headers) and opens Live on the source; a failure is said under the row,
   * or returned to the panel that asked, to show beside its button. */
  const sendTest = async (source: EventSource, request?: WebhookTestRequest): Promise<string | null> => {
    const say = (said: RowNotice) => {
      if (request === undefined) setNotice(said);
    };
    try {
      const webhook = source.type === 'webhook';
      say({ id: source.id, kind: 'info', text: webhook ? 'Sending a test webhook…' : 'Sending a test event…' });
      const path = `/event-keys/${encodeURIComponent(source.id)}/${webhook ? 'test-webhook' : 'test-event'}`;
      // A test webhook is a request signed by the server with the stored secret, going the
      // provider's way; its event keeps the request's message id (several: `<id>:<n>`).
      const messageId = webhook
        ? (await api.post<{ message_id: string }>(path, request ?? {})).message_id
        : (await api.post<{ messageId: string }>(path, {})).messageId;
      // Once processed, the event is in the backlog a new live stream starts with: the Live
      // debugger then opens on this source with the test event already in its list.
      // A request a transformation fans out has no event of its own id: its first is `<id>:0`.
      const trace = await (webhook ? processed(api, messageId, `${messageId}:0`) : processed(api, messageId));
      // A request that could not be mapped to events has no event for Live to show: why it
      // failed is said here instead.
      const failed = webhook ? trace?.stages.find((stage) => stage.stage === 'dead_lettered') : undefined;
      if (failed) {
        const text = `The test webhook was accepted, but ${failed.reason ?? 'it was dead-lettered'}. It is kept in Dead letters, to replay once the settings are fixed.`;
        say({ id: source.id, kind: 'error', text });
        return text;
      }
      openLive({ source_id: source.id });
      return null;
    } catch (err) {
      say({ id: source.id, kind: 'error', text: messageOf(err) });
      return messageOf(err);
    }
  };

  const columns: Column<EventSource>[] = [
    { header: 'Name', rowHeader: true, cell: (source) => <Name text={source.name} /> },
    { header: 'Status', width: '6rem', cell: (source) => <StatusBadge value={source.status} /> },
    { header: 'Type', width: '6.5rem', cell: (source) => source.type },
    {
      header: 'Write key',
      width: '13rem',
      cell: (source) => (
        <span class="key-cell">
          <code class="key" data-testid="write-key" title={source.key}>{source.key}</code>
          <CopyButton text={source.key} label="Copy key" />
        </span>
      ),
    },
    { header: 'Last used', width: '9.5rem', cell: (source) => <Time iso={source.last_used_at} /> },
    { header: 'Created', width: '9.5rem', cell: (source) => <Time iso={source.created_at} /> },
    {
      header: 'Actions',
      hiddenHeader: true,
      width: '27rem',
      class: 'actions',
      cell: (source) => (
        <SourceActions
          source={source}
          selected={source.id === selected}
          privacyOpen={source.id === privacyOf}
          onPrivacy={() => setPrivacyOf(source.id === privacyOf ? null : source.id)}
          confirming={confirming === source.id}
          onSnippet={() => setSelected(source.id === selected ? null : source.id)}
          onTest={() => sendTest(source)}
          onRevoke={() => setConfirming(source.id)}
          onConfirm={() => revoke(source)}
          onCancel={() => setConfirming(null)}
        />
      ),
    },
  ];

  return (
    <div class="stack">
      <p class="lead">
        A source is where events come from: each has a write key that SDKs and HTTP calls send with their events.
      </p>
      <form class="card create-form" onSubmit={create}>
        <div class="inline-form">
          <div class="field grow">
            <label for="source-name">New source name</label>
            <input
              id="source-name"
              value={name}
              maxLength={200}
              placeholder="Web app"
              onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)}
              required
            />
          </div>
          <div class="field">
            <label for="source-type">Type</label>
            <select id="source-type" value={sourceType} onChange={(e) => setSourceType((e.currentTarget as HTMLSelectElement).value as SourceType)}>
              {SOURCE_TYPES.map((option) => <option key={option.value} value={option.value}>{option.label}</option>)}
            </select>
          </div>
          <button type="submit" disabled={busy || !name.trim()}>Create source</button>
        </div>
        {createError ? <Notice kind="error">{createError}</Notice> : null}
      </form>
      <ListControls list={sources} idPrefix="sources" noun="sources" hiddenLabel="revoked" />
      <PagedTable
        list={sources}
        caption="Event sources, newest first"
        noun="sources"
        columns={columns}
        rowClass={(source) => (source.id === selected || source.id === privacyOf ? 'selected' : undefined)}
        empty="No sources yet: create one above."
        detail={(source) => {
          const own = notice?.id === source.id ? notice : null;
          if (!own && source.id !== selected && source.id !== privacyOf) return null;
          return (
            <div class="stack">
              {own ? <Notice kind={own.kind}>{own.text}</Notice> : null}
              {source.id === privacyOf ? <SourcePrivacyPanel api={api} sourceId={source.id} sourceName={source.name} /> : null}
              {source.id === selected ? (
                source.type === 'webhook' ? (
                  <WebhookPanel api={api} source={source} onTest={(request) => sendTest(source, request)} />
                ) : (
                  <SnippetPanel source={source} />
                )
              ) : null}
            </div>
          );
        }}
      />
    </div>
  );
}

function SourceActions(props: {
  source: EventSource;
  selected: boolean;
  privacyOpen: boolean;
  confirming: boolean;
  onSnippet: () => void;
  onPrivacy: () => void;
  onTest: () => void;
  onRevoke: () => void;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const { source } = props;
  // The visually hidden name tells screen-reader users which source each button acts on; it is
  // escaped like every shown name.
  const which = <span class="visually-hidden"> {visibleText(source.name)}</span>;
  return (
    <div class="button-row">
      <button type="button" class="secondary small" aria-pressed={props.selected} onClick={props.onSnippet}>
        {source.type === 'webhook' ? 'Webhook' : 'Snippet'}<span class="visually-hidden"> for</span>{which}
      </button>
      <button type="button" class="secondary small" aria-pressed={props.privacyOpen} onClick={props.onPrivacy}>
        Privacy<span class="visually-hidden"> of</span>{which}
      </button>
      {source.status === 'active' ? (
        <>
          <button type="button" class="secondary small" onClick={props.onTest}>
            {source.type === 'webhook' ? 'Send test webhook' : 'Send test event'}<span class="visually-hidden"> to</span>{which}
          </button>
          {props.confirming ? (
            <>
              <button type="button" class="danger small" onClick={props.onConfirm}>
                Confirm revoke{which}
              </button>
              <button type="button" class="secondary small" onClick={props.onCancel}>
                Cancel
              </button>
            </>
          ) : (
            <button type="button" class="danger-outline small" onClick={props.onRevoke}>
              Revoke{which}
            </button>
          )}
        </>
      ) : null}
    </div>
  );
}

function SnippetPanel(props: { source: EventSource }) {
  const [kind, setKind] = useState<SnippetKind>('web');
  const kinds = Object.keys(SNIPPET_LABELS) as SnippetKind[];
  const code = snippet(kind, ingestOrigin(), props.source.key);

  const onTabKeys = (event: KeyboardEvent) => {
    const index = kinds.indexOf(kind);
    let next = index;
    if (event.key === 'ArrowRight') next = (index + 1) % kinds.length;
    else if (event.key === 'ArrowLeft') next = (index - 1 + kinds.length) % kinds.length;
    else return;
    event.preventDefault();
    setKind(kinds[next]);
    const tabs = (event.currentTarget as HTMLElement).querySelectorAll<HTMLElement>('[role="tab"]');
    tabs[next]?.focus();
  };

  return (
    <section class="card" aria-labelledby="snippet-title">
      {/* One line, cut with an ellipsis: a heading is read whole, so no inline-block <Name>. */}
      <h2 id="snippet-title" class="title-line" title={visibleText(props.source.name)}>
        Send events to “{visibleText(props.source.name)}”
      </h2>
      {props.source.status !== 'active' ? (
        <Notice kind="info">This source is revoked: its key is refused.</Notice>
      ) : null}
      <div role="tablist" aria-label="Snippet language" class="tabs" onKeyDown={onTabKeys}>
        {kinds.map((k) => (
          <button
            key={k}
            type="button"
            role="tab"
            id={`tab-${k}`}
            aria-selected={k === kind}
            aria-controls="snippet-panel"
            tabIndex={k === kind ? 0 : -1}
            onClick={() => setKind(k)}
          >
            {SNIPPET_LABELS[k]}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="snippet-panel" aria-labelledby={`tab-${kind}`}>
        <pre class="code" tabIndex={0}><code data-testid="snippet">{code}</code></pre>
        <CopyButton text={code} label="Copy snippet" />
      </div>
    </section>
  );
}

const PROCESSING_WAIT_MS = 10_000;

/** Wait until the trace of one of `messageIds` says it was processed, and return it (or give
 * up after a while and return null: Live will still show the event when it arrives). */
async function processed(api: Api, ...messageIds: string[]): Promise<EventTrace | null> {
  const deadline = Date.now() + PROCESSING_WAIT_MS;
  while (Date.now() < deadline) {
    for (const messageId of messageIds) {
      try {
        const trace = await api.get<EventTrace>(`/events/${encodeURIComponent(messageId)}/trace`);
        if (trace.state === 'processed') return trace;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) throw err;
      }
    }
    await new Promise((resolve) => window.setTimeout(resolve, 300));
  }
  return null;
}
