import { useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { CopyButton, Loading, Notice, StatusBadge } from '../components/common';
import { formatTime } from '../format';
import { useLoad } from '../hooks';
import { SNIPPET_LABELS, snippet, type SnippetKind } from '../snippets';
import type { EventSource } from '../types';

export function SourcesPage(props: { api: Api }) {
  const { api } = props;
  const sources = useLoad((signal) => api.get<EventSource[]>('/event-keys', undefined, signal), [api]);
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);

  const create = async (event: Event) => {
    event.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    try {
      const source = await api.post<EventSource>('/event-keys', { name: name.trim() });
      setName('');
      setSelected(source.id);
      setNotice({ kind: 'success', text: `Source “${source.name}” created. Its snippet is below.` });
      sources.reload();
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (source: EventSource) => {
    setConfirming(null);
    try {
      await api.delete(`/event-keys/${encodeURIComponent(source.id)}`);
      setNotice({ kind: 'success', text: `Source “${source.name}” revoked: its write key is refused within 10 s.` });
      sources.reload();
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    }
  };

  const sendTest = async (source: EventSource) => {
    try {
      const accepted = await api.post<{ messageId: string }>(`/event-keys/${encodeURIComponent(source.id)}/test-event`, {});
      setNotice({ kind: 'success', text: `Test event ${accepted.messageId} sent: watch for it in the live debugger.` });
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    }
  };

  const list = sources.data ?? [];
  const chosen = list.find((s) => s.id === selected) ?? null;

  return (
    <div class="stack">
      <p class="lead">
        A source is where events come from: each has a write key that SDKs and HTTP calls send with their events.
      </p>
      <form class="inline-form card" onSubmit={create}>
        <div class="field">
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
      </form>
      {notice ? <Notice kind={notice.kind}>{notice.text}</Notice> : null}
      {sources.error ? <Notice kind="error">{sources.error}</Notice> : null}
      {sources.loading && !sources.data ? <Loading /> : null}
      {sources.data && list.length === 0 ? <p class="muted">No sources yet: create one above.</p> : null}
      {list.length > 0 ? (
        <div class="table-wrap">
          <table>
            <caption class="visually-hidden">Event sources</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Status</th>
                <th scope="col">Write key</th>
                <th scope="col">Last used</th>
                <th scope="col">Created</th>
                <th scope="col"><span class="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {list.map((source) => (
                <tr key={source.id} class={source.id === selected ? 'selected' : undefined}>
                  <th scope="row">{source.name}</th>
                  <td><StatusBadge value={source.status} /></td>
                  <td>
                    <code class="key" data-testid="write-key">{source.key}</code>{' '}
                    <CopyButton text={source.key} label="Copy key" />
                  </td>
                  <td>{formatTime(source.last_used_at)}</td>
                  <td>{formatTime(source.created_at)}</td>
                  <td class="actions">
                    <button
                      type="button"
                      class="secondary small"
                      aria-pressed={source.id === selected}
                      onClick={() => setSelected(source.id === selected ? null : source.id)}
                    >
                      Snippet<span class="visually-hidden"> for {source.name}</span>
                    </button>
                    {source.status === 'active' ? (
                      <>
                        <button type="button" class="secondary small" onClick={() => sendTest(source)}>
                          Send test event<span class="visually-hidden"> to {source.name}</span>
                        </button>
                        {confirming === source.id ? (
                          <>
                            <button type="button" class="danger small" onClick={() => revoke(source)}>
                              Confirm revoke<span class="visually-hidden"> {source.name}</span>
                            </button>
                            <button type="button" class="secondary small" onClick={() => setConfirming(null)}>
                              Cancel
                            </button>
                          </>
                        ) : (
                          <button type="button" class="danger-outline small" onClick={() => setConfirming(source.id)}>
                            Revoke<span class="visually-hidden"> {source.name}</span>
                          </button>
                        )}
                      </>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {chosen ? <SnippetPanel source={chosen} /> : null}
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
      <h2 id="snippet-title">Send events to “{props.source.name}”</h2>
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
