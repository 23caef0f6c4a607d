import { useState } from 'preact/hooks';

import { ApiError, type Api, messageOf } from '../api';
import { CopyButton, Notice, StatusBadge } from '../components/common';
import { type Column, ListControls, PagedTable, usePagedList } from '../components/lists';
import { Name, Time } from '../components/text';
import { visibleText } from '../format';
import { openLive } from '../navigation';
import { SNIPPET_LABELS, snippet, type SnippetKind } from '../snippets';
import type { EventSource, EventTrace } from '../types';

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
  const [busy, setBusy] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);
  const [notice, setNotice] = useState<RowNotice | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);

  const create = async (event: Event) => {
    event.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    setCreateError(null);
    try {
      const source = await api.post<EventSource>('/event-keys', { name: name.trim() });
      setName('');
      sources.pin(source);
      setSelected(source.id);
      setNotice({ id: source.id, kind: 'success', text: `Source “${visibleText(source.name)}” created. Its snippet is below.` });
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

  const sendTest = async (source: EventSource) => {
    try {
      setNotice({ id: source.id, kind: 'info', text: 'Sending a test event…' });
      const accepted = await api.post<{ messageId: string }>(`/event-keys/${encodeURIComponent(source.id)}/test-event`, {});
      // Once processed, the event is in the backlog a new live stream starts with: the Live
      // debugger then opens on this source with the test event already in its list.
      await processed(api, accepted.messageId);
      openLive({ source_id: source.id });
    } catch (err) {
      setNotice({ id: source.id, kind: 'error', text: messageOf(err) });
    }
  };

  const columns: Column<EventSource>[] = [
    { header: 'Name', rowHeader: true, cell: (source) => <Name text={source.name} /> },
    { header: 'Status', width: '6rem', cell: (source) => <StatusBadge value={source.status} /> },
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
      width: '22rem',
      class: 'actions',
      cell: (source) => (
        <SourceActions
          source={source}
          selected={source.id === selected}
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
        rowClass={(source) => (source.id === selected ? 'selected' : undefined)}
        empty="No sources yet: create one above."
        detail={(source) => {
          const own = notice?.id === source.id ? notice : null;
          if (!own && source.id !== selected) return null;
          return (
            <div class="stack">
              {own ? <Notice kind={own.kind}>{own.text}</Notice> : null}
              {source.id === selected ? <SnippetPanel source={source} /> : null}
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
  confirming: boolean;
  onSnippet: () => void;
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
        Snippet<span class="visually-hidden"> for</span>{which}
      </button>
      {source.status === 'active' ? (
        <>
          <button type="button" class="secondary small" onClick={props.onTest}>
            Send test event<span class="visually-hidden"> to</span>{which}
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
  const code = snippet(kind, window.location.origin, props.source.key);

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

/** Wait until an event's trace says it was processed (or give up after a while: Live will
 * still show it when it arrives). */
async function processed(api: Api, messageId: string): Promise<void> {
  const deadline = Date.now() + PROCESSING_WAIT_MS;
  while (Date.now() < deadline) {
    try {
      const trace = await api.get<EventTrace>(`/events/${encodeURIComponent(messageId)}/trace`);
      if (trace.state === 'processed') return;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
    await new Promise((resolve) => window.setTimeout(resolve, 300));
  }
}
