import { useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { JsonView, Loading, Notice, StatusBadge, onListKeys } from '../components/common';
import { json, short } from '../format';
import { useLoad } from '../hooks';
import type { Difference, TestResult, Transformation } from '../types';

const TEMPLATE = `function transform(event, metadata) {
  if (event.properties && event.properties.total > 100) {
    event.properties.tier = 'high_value';
  }
  return event;
}
`;
const SAMPLE_INPUT = { type: 'track', event: 'Order Completed', messageId: 'test-1', properties: { total: 150 } };

interface Draft {
  id: string | null;
  name: string;
  description: string;
  status: 'active' | 'draft';
  code: string;
  input: string;
  expected: string;
}

function draftOf(t: Transformation | null): Draft {
  if (!t) {
    return { id: null, name: '', description: '', status: 'draft', code: TEMPLATE, input: json(SAMPLE_INPUT), expected: '' };
  }
  return {
    id: t.id,
    name: t.name,
    description: t.description ?? '',
    status: t.status === 'active' ? 'active' : 'draft',
    code: t.source_code,
    input: t.test_input ? json(t.test_input) : '',
    expected: t.test_output === null || t.test_output === undefined ? '' : json(t.test_output),
  };
}

function parseJson(text: string, what: string): { value?: unknown; error?: string } {
  if (!text.trim()) return {};
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `${what} is not valid JSON: ${messageOf(err)}` };
  }
}

export function TransformationsPage(props: { api: Api }) {
  const { api } = props;
  const list = useLoad((signal) => api.get<Transformation[]>('/event-transformations', undefined, signal), [api]);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [current, setCurrent] = useState<Transformation | null>(null);
  // A new editor when one is opened from the list (or New); saving keeps the same editor.
  const [opened, setOpened] = useState(0);

  const open = (t: Transformation | null) => {
    setCurrent(t);
    setDraft(draftOf(t));
    setOpened((n) => n + 1);
  };

  return (
    <div class="stack">
      <p class="lead">
        JavaScript that a forwarding rule runs on each event before delivery: <code>transform(event, metadata)</code> returns the
        event to send, an array to fan out, or <code>null</code> to drop it.
      </p>
      {list.error ? <Notice kind="error">{list.error}</Notice> : null}
      <div class="split split-narrow">
        <section class="card list-panel" aria-labelledby="transformations-title">
          <div class="section-head">
            <h2 id="transformations-title">Transformations</h2>
            <button type="button" class="small" onClick={() => open(null)}>New</button>
          </div>
          {list.loading && !list.data ? <Loading /> : null}
          {list.data && list.data.length === 0 ? <p class="muted">None yet.</p> : null}
          <ul class="plain-list" onKeyDown={onListKeys}>
            {(list.data ?? []).map((t) => (
              <li key={t.id}>
                <button type="button" class="row-button" data-row aria-pressed={current?.id === t.id} onClick={() => open(t)}>
                  <span>{t.name}</span> <StatusBadge value={t.status} /> <span class="muted">v{t.version}</span>
                </button>
              </li>
            ))}
          </ul>
        </section>
        {draft ? (
          <Editor
            key={opened}
            api={api}
            initial={draft}
            current={current}
            onSaved={(t) => { setCurrent(t); list.reload(); }}
            onDeleted={() => { setDraft(null); setCurrent(null); list.reload(); }}
          />
        ) : (
          <section class="card"><p class="muted">Choose a transformation, or create a new one.</p></section>
        )}
      </div>
    </div>
  );
}

function Editor(props: {
  api: Api;
  initial: Draft;
  current: Transformation | null;
  onSaved: (t: Transformation) => void;
  onDeleted: () => void;
}) {
  const { api } = props;
  const [draft, setDraft] = useState<Draft>(props.initial);
  const [notice, setNotice] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [result, setResult] = useState<TestResult | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const set = (field: keyof Draft) => (e: Event) =>
    setDraft((d) => ({ ...d, [field]: (e.currentTarget as HTMLInputElement).value }));

  const save = async (event: Event) => {
    event.preventDefault();
    const input = parseJson(draft.input, 'Test input');
    const expected = parseJson(draft.expected, 'Expected output');
    if (input.error || expected.error) {
      setNotice({ kind: 'error', text: (input.error ?? expected.error)! });
      return;
    }
    const body = {
      name: draft.name,
      description: draft.description,
      source_code: draft.code,
      status: draft.status,
      test_input: input.value ?? null,
      test_output: expected.value ?? null,
    };
    setBusy(true);
    try {
      const saved = draft.id
        ? await api.put<Transformation>(`/event-transformations/${encodeURIComponent(draft.id)}`, body)
        : await api.post<Transformation>('/event-transformations', body);
      setDraft((d) => ({ ...d, id: saved.id }));
      setNotice({ kind: 'success', text: `Saved “${saved.name}” (version ${saved.version}).` });
      props.onSaved(saved);
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    } finally {
      setBusy(false);
    }
  };

  const test = async (recent?: number) => {
    if (!draft.id) return;
    const input = parseJson(draft.input, 'Test input');
    const expected = parseJson(draft.expected, 'Expected output');
    if (input.error || expected.error) {
      setNotice({ kind: 'error', text: (input.error ?? expected.error)! });
      return;
    }
    const body: Record<string, unknown> = { source_code: draft.code };
    if (recent) body.recent = recent;
    else {
      if (input.value !== undefined) body.input = input.value;
      if (expected.value !== undefined) body.expected = expected.value;
    }
    setBusy(true);
    setNotice(null);
    try {
      setResult(await api.post<TestResult>(`/event-transformations/${encodeURIComponent(draft.id)}/test`, body));
    } catch (err) {
      setResult(null);
      setNotice({ kind: 'error', text: messageOf(err) });
    } finally {
      setBusy(false);
    }
  };

  const remove = async () => {
    if (!draft.id) return;
    setConfirmDelete(false);
    try {
      await api.delete(`/event-transformations/${encodeURIComponent(draft.id)}`);
      props.onDeleted();
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    }
  };

  return (
    <section class="card stack" aria-labelledby="editor-title">
      <h2 id="editor-title">{props.current ? `Edit “${props.current.name}”` : 'New transformation'}</h2>
      {props.current?.compile_error ? <Notice kind="error">Stored code no longer compiles: {props.current.compile_error}</Notice> : null}
      <form class="stack" onSubmit={save}>
        <div class="row">
          <div class="field grow">
            <label for="t-name">Name</label>
            <input id="t-name" value={draft.name} onInput={set('name')} required maxLength={200} />
          </div>
          <div class="field">
            <label for="t-status">Status</label>
            <select id="t-status" value={draft.status} onChange={set('status')}>
              <option value="active">active (rules run it)</option>
              <option value="draft">draft (saved, not run)</option>
            </select>
          </div>
        </div>
        <div class="field">
          <label for="t-description">Description</label>
          <input id="t-description" value={draft.description} onInput={set('description')} />
        </div>
        <div class="field">
          <label for="t-code">Code</label>
          <textarea id="t-code" class="code-input" rows={14} spellcheck={false} value={draft.code} onInput={set('code')} aria-describedby="t-code-help" />
          <p id="t-code-help" class="help">ES2020 in a sandbox (QuickJS), strict mode, no network or timers; 100 ms of CPU per event.</p>
        </div>
        <div class="row">
          <div class="field grow">
            <label for="t-input">Test input (an event, JSON)</label>
            <textarea id="t-input" class="code-input" rows={8} spellcheck={false} value={draft.input} onInput={set('input')} />
          </div>
          <div class="field grow">
            <label for="t-expected">Expected output (JSON, optional)</label>
            <textarea id="t-expected" class="code-input" rows={8} spellcheck={false} value={draft.expected} onInput={set('expected')} />
          </div>
        </div>
        <div class="button-row">
          <button type="submit" disabled={busy}>{draft.id ? 'Save' : 'Create'}</button>
          <button type="button" class="secondary" disabled={busy || !draft.id} onClick={() => test()}>Run test</button>
          <button type="button" class="secondary" disabled={busy || !draft.id} onClick={() => test(10)}>Test on 10 recent events</button>
          {draft.id ? (
            confirmDelete ? (
              <>
                <button type="button" class="danger" onClick={remove}>Confirm delete</button>
                <button type="button" class="secondary" onClick={() => setConfirmDelete(false)}>Cancel</button>
              </>
            ) : (
              <button type="button" class="danger-outline" onClick={() => setConfirmDelete(true)}>Delete</button>
            )
          ) : <span class="help">Create it to run tests (tests run the code in the editor).</span>}
        </div>
      </form>
      {notice ? <Notice kind={notice.kind}>{notice.text}</Notice> : null}
      {result ? <TestOutcome result={result} /> : null}
    </section>
  );
}

function DiffTable(props: { diff: Difference[]; caption: string; before: string; after: string }) {
  return (
    <div class="table-wrap">
      <table class="diff">
        <caption>{props.caption}</caption>
        <thead><tr><th scope="col">Path</th><th scope="col">Change</th><th scope="col">{props.before}</th><th scope="col">{props.after}</th></tr></thead>
        <tbody>
          {props.diff.map((d, i) => (
            <tr key={i} class={`diff-${d.change}`}>
              <td><code>{d.path || '(root)'}</code></td>
              <td>{d.change}</td>
              <td>{d.change === 'added' ? <span class="muted">—</span> : <code>{short('expected' in d ? d.expected : d.before, 80)}</code>}</td>
              <td>{d.change === 'removed' ? <span class="muted">—</span> : <code>{short('actual' in d ? d.actual : d.after, 80)}</code>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function TestOutcome(props: { result: TestResult }) {
  const { result } = props;
  const verdict = result.passed === null ? 'ran' : result.passed ? 'passed' : 'failed';
  return (
    <section class="stack test-result" aria-labelledby="test-title" data-testid="test-result">
      <h3 id="test-title">
        Test result <StatusBadge value={verdict} />
        {result.duration_ms !== undefined ? <span class="muted"> · {result.duration_ms.toFixed(1)} ms</span> : null}
      </h3>
      {result.error ? <Notice kind="error">{result.error}{result.error_line ? ` (line ${result.error_line})` : ''}</Notice> : null}
      {(result.warnings ?? []).map((w, i) => <Notice key={i} kind="info">{w}</Notice>)}
      {result.mode === 'sample' ? (
        <>
          {result.dropped ? <p>The event is <strong>dropped</strong>.</p> : null}
          {result.diff && result.diff.length > 0 ? (
            <DiffTable diff={result.diff} caption="Differences from the expected output" before="Expected" after="Actual" />
          ) : result.passed ? <p>The output equals the expected output.</p> : null}
          <div class="row">
            <div class="grow"><h4>Output</h4><JsonView value={result.output ?? null} label="Test output" /></div>
            {result.expected !== undefined && result.expected !== null ? (
              <div class="grow"><h4>Expected</h4><JsonView value={result.expected} label="Expected output" /></div>
            ) : null}
          </div>
        </>
      ) : (
        <>
          {(result.events ?? []).length === 0 ? <p class="muted">No events received in the last 7 days.</p> : null}
          {(result.events ?? []).map((run, i) => (
            <details key={i} open={i === 0}>
              <summary>
                <code>{run.message_id ?? '(no id)'}</code>{' '}
                {run.error ? <StatusBadge value="failed" /> : run.dropped ? <StatusBadge value="dropped" /> : <span class="muted">{run.changes.length} change(s)</span>}
              </summary>
              {run.error ? <Notice kind="error">{run.error}</Notice> : null}
              {run.changes.length > 0 ? <DiffTable diff={run.changes} caption="Changes" before="Before" after="After" /> : null}
            </details>
          ))}
        </>
      )}
      {(result.logs ?? []).length > 0 ? (<><h4>Console</h4><pre class="code">{(result.logs ?? []).join('\n')}</pre></>) : null}
    </section>
  );
}
