import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { JsonView, Loading, Notice, StatusBadge, onListKeys } from '../components/common';
import { type Column, ListControls, PagedTable, usePagedList } from '../components/lists';
import { SourcePicker } from '../components/investigate';
import { Name, Time } from '../components/text';
import { mayDiscard, useLeaveGuard } from '../components/unsaved';
import { json, plural, short, visibleText } from '../format';
import type { Difference, RecentRun, TestResult, Transformation } from '../types';

const TEMPLATE = `function transform(event, metadata) {
  if (event.properties && event.properties.total > 100) {
    event.properties.tier = 'high_value';
  }
  return event;
}
`;
const SAMPLE_INPUT = { type: 'track', event: 'Order Completed', messageId: 'test-1', properties: { total: 150 } };
const RECENT_COUNTS = [5, 10, 25, 50, 100];
const UNSAVED = 'This transformation has unsaved changes. Leave without saving them?';

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
  // Every status stays listed: a draft is work in progress and "error" (stored code that no
  // longer compiles) needs attention; neither is retired. Delete retires one.
  const list = usePagedList<Transformation>(api, '/event-transformations');
  const [draft, setDraft] = useState<Draft | null>(null);
  const [current, setCurrent] = useState<Transformation | null>(null);
  // A new editor when one is opened from the list (or New); saving keeps the same editor.
  const [opened, setOpened] = useState(0);
  const editor = useRef<HTMLDivElement>(null);

  // Below 1100 px the editor is under the list (up to 50 rows and more): bring it into view.
  useEffect(() => {
    const box = editor.current?.getBoundingClientRect();
    if (opened > 0 && box && (box.top < 0 || box.top > window.innerHeight)) editor.current?.scrollIntoView({ block: 'start' });
  }, [opened]);

  const open = (t: Transformation | null) => {
    if (!mayDiscard()) return;
    setCurrent(t);
    setDraft(draftOf(t));
    setOpened((n) => n + 1);
  };

  const saved = (t: Transformation) => {
    // A new one goes to the top of the list, whatever the search; a saved one changes in place.
    if (current?.id === t.id) list.update(t);
    else list.pin(t);
    setCurrent(t);
  };

  const columns: Column<Transformation>[] = [
    {
      header: 'Name',
      rowHeader: true,
      cell: (t) => (
        <button type="button" class="link name-button" data-row aria-pressed={current?.id === t.id} onClick={() => open(t)}>
          <Name text={t.name} />
        </button>
      ),
    },
    // One column for both: the list is a narrow column beside the editor at a desktop's width.
    {
      header: 'Status',
      width: '7.5rem',
      cell: (t) => <><StatusBadge value={t.status} /> <span class="muted">v{t.version}</span></>,
    },
  ];

  return (
    <div class="stack">
      <p class="lead">
        JavaScript that a forwarding rule runs on each event before delivery: <code>transform(event, metadata)</code> returns the
        event to send, an array to fan out, or <code>null</code> to drop it.
      </p>
      <div class="split split-narrow transformations">
        <section class="card list-panel stack" aria-labelledby="transformations-title">
          <div class="section-head">
            <h2 id="transformations-title">Transformations</h2>
            <button type="button" class="small" onClick={() => open(null)}>New</button>
          </div>
          <ListControls list={list} idPrefix="transformations" noun="transformations" />
          {/* Arrow keys move between the transformations' names. */}
          <div onKeyDown={onListKeys}>
            <PagedTable
              list={list}
              caption="Transformations, newest first"
              noun="transformations"
              columns={columns}
              rowClass={(t) => (current?.id === t.id ? 'selected' : undefined)}
              empty="None yet: create one with “New”."
            />
          </div>
        </section>
        <div ref={editor}>
          {draft ? (
            <Editor
              key={opened}
              api={api}
              initial={draft}
              current={current}
              onSaved={saved}
              onDeleted={() => { setDraft(null); setCurrent(null); list.reload(); }}
            />
          ) : (
            <section class="card"><p class="muted">Choose a transformation, or create a new one.</p></section>
          )}
        </div>
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
  // The draft as last saved (or as opened): what differs from it is unsaved.
  const [saved, setSaved] = useState<Draft>(props.initial);
  const [notice, setNotice] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [testNotice, setTestNotice] = useState<string | null>(null);
  const [result, setResult] = useState<TestResult | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [recentCount, setRecentCount] = useState(10);
  const [recentName, setRecentName] = useState('');
  const [recentSource, setRecentSource] = useState('');
  const unsaved = JSON.stringify({ ...draft, id: null }) !== JSON.stringify({ ...saved, id: null });
  useLeaveGuard(unsaved ? UNSAVED : null);
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
      const stored = draft.id
        ? await api.put<Transformation>(`/event-transformations/${encodeURIComponent(draft.id)}`, body)
        : await api.post<Transformation>('/event-transformations', body);
      const savedDraft = { ...draft, id: stored.id };
      setDraft((d) => ({ ...d, id: stored.id }));
      setSaved(savedDraft);
      setNotice({ kind: 'success', text: `Saved “${visibleText(stored.name)}” (version ${stored.version}).` });
      props.onSaved(stored);
    } catch (err) {
      setNotice({ kind: 'error', text: messageOf(err) });
    } finally {
      setBusy(false);
    }
  };

  const test = async (recent: boolean) => {
    if (!draft.id) return;
    const input = parseJson(draft.input, 'Test input');
    const expected = parseJson(draft.expected, 'Expected output');
    if (!recent && (input.error || expected.error)) {
      setTestNotice((input.error ?? expected.error)!);
      return;
    }
    const body: Record<string, unknown> = { source_code: draft.code };
    if (recent) {
      body.recent = recentCount;
      if (recentName.trim()) body.event_name = recentName.trim();
      if (recentSource) body.source_id = recentSource;
    } else {
      if (input.value !== undefined) body.input = input.value;
      // Omitted when the box is empty: the API then compares with the saved expected output, if
      // any (a JSON null would mean "expects the event dropped").
      if (expected.value !== undefined) body.expected = expected.value;
    }
    setBusy(true);
    setTestNotice(null);
    try {
      setResult(await api.post<TestResult>(`/event-transformations/${encodeURIComponent(draft.id)}/test`, body));
    } catch (err) {
      setResult(null);
      setTestNotice(messageOf(err));
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
      <div class="section-head">
        <h2 id="editor-title" class="detail-title">{props.current ? <>Edit <Name text={props.current.name} /></> : 'New transformation'}</h2>
        {unsaved ? <span class="badge badge-warn" data-testid="unsaved">unsaved changes</span> : null}
      </div>
      {props.current ? <p class="help">Version {props.current.version}, saved <Time iso={props.current.updated_at} />.</p> : null}
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
        <div class="button-row">
          <button type="submit" disabled={busy}>{draft.id ? 'Save' : 'Create'}</button>
          {draft.id ? (
            confirmDelete ? (
              <>
                <button type="button" class="danger" onClick={remove}>Confirm delete</button>
                <button type="button" class="secondary" onClick={() => setConfirmDelete(false)}>Cancel</button>
              </>
            ) : (
              <button type="button" class="danger-outline" onClick={() => setConfirmDelete(true)}>Delete</button>
            )
          ) : null}
        </div>
        {notice ? <Notice kind={notice.kind}>{notice.text}</Notice> : null}
        <fieldset class="test-box stack">
          <legend>Test with a sample event</legend>
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
            <button type="button" class="secondary" disabled={busy || !draft.id} onClick={() => test(false)}>Run test</button>
          </div>
        </fieldset>
        <fieldset class="test-box stack">
          <legend>Test on recent events</legend>
          <p class="help">Runs the code in the editor on stored events of the last 7 days, newest first.</p>
          <div class="toolbar">
            <div class="field">
              <label for="t-recent-count">Events</label>
              <select id="t-recent-count" value={String(recentCount)} onChange={(e) => setRecentCount(Number((e.currentTarget as HTMLSelectElement).value))}>
                {RECENT_COUNTS.map((n) => <option key={n} value={String(n)}>{n}</option>)}
              </select>
            </div>
            <div class="field">
              <label for="t-recent-name">Event name</label>
              <input id="t-recent-name" value={recentName} placeholder="any" maxLength={200} onInput={(e) => setRecentName((e.currentTarget as HTMLInputElement).value)} />
            </div>
            <SourcePicker api={api} id="t-recent-source" value={recentSource} onChange={setRecentSource} />
            <button type="button" class="secondary" disabled={busy || !draft.id} onClick={() => test(true)}>Test on recent events</button>
          </div>
        </fieldset>
        {!draft.id ? <p class="help">Create it to run tests (tests run the code in the editor, unsaved edits included).</p> : null}
      </form>
      {testNotice ? <Notice kind="error">{testNotice}</Notice> : null}
      {busy ? <Loading label="Running…" /> : null}
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
              <td><code>{d.path ? visibleText(d.path) : '(root)'}</code></td>
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
  // Only a comparison with an expected output passes; recent events have none to compare with.
  const verdict =
    result.mode === 'recent'
      ? (result.events ?? []).some((run) => run.error) ? 'failed' : 'ran without errors'
      : result.passed === null ? 'no expected output' : result.passed ? 'passed' : 'failed';
  const compared = verdict === 'passed' || verdict === 'failed';
  return (
    <section class="stack test-result" aria-labelledby="test-title" data-testid="test-result">
      <h3 id="test-title">
        {result.mode === 'recent' ? 'Recent events' : 'Test result'}{' '}
        {compared ? <StatusBadge value={verdict} /> : <span class="badge badge-neutral">{verdict}</span>}
        {result.duration_ms !== undefined ? <span class="muted"> · {result.duration_ms.toFixed(1)} ms</span> : null}
      </h3>
      {result.error ? <Notice kind="error">{result.error}{result.error_line ? ` (line ${result.error_line})` : ''}</Notice> : null}
      {(result.warnings ?? []).map((w, i) => <Notice key={i} kind="info">{w}</Notice>)}
      {result.mode === 'sample' ? (
        <>
          {result.passed === null ? (
            <p data-testid="no-expected">There is no expected output to compare: this shows what the code returns. Fill in the expected output to check it.</p>
          ) : null}
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
          <ConsoleLines lines={result.logs ?? []} />
        </>
      ) : (
        <RecentRuns runs={result.events ?? []} skipped={result.skipped ?? 0} />
      )}
    </section>
  );
}

function ConsoleLines(props: { lines: string[]; label?: string }) {
  if (props.lines.length === 0) return <p class="muted">{props.label ?? 'Console'}: nothing logged.</p>;
  return (
    <>
      <h4>{props.label ?? 'Console'}</h4>
      <pre class="code console-lines">{props.lines.map(visibleText).join('\n')}</pre>
    </>
  );
}

function RecentRuns(props: { runs: RecentRun[]; skipped: number }) {
  const { runs } = props;
  if (runs.length === 0) return <p class="muted">No stored events of the last 7 days match.</p>;
  const changed = runs.filter((r) => r.changes.length > 0).length;
  const dropped = runs.filter((r) => r.dropped).length;
  const failed = runs.filter((r) => r.error).length;
  return (
    <>
      <p data-testid="recent-summary">
        {plural(runs.length, 'event')} run: {changed} changed, {dropped} dropped, {failed} failed
        {props.skipped ? `, ${props.skipped} not run (CPU time used up)` : ''}.
      </p>
      {runs.map((run, i) => (
        <details key={i} open={i === 0} class="recent-run" data-testid="recent-run">
          <summary>
            <code>{visibleText(run.message_id ?? '(no id)')}</code>{' '}
            {run.error ? <StatusBadge value="failed" /> : run.dropped ? <StatusBadge value="dropped" /> : <span class="muted">{plural(run.changes.length, 'change')}</span>}
          </summary>
          <div class="stack">
            {run.error ? <Notice kind="error">{run.error}{run.error_line ? ` (line ${run.error_line})` : ''}</Notice> : null}
            {run.changes.length > 0 ? <DiffTable diff={run.changes} caption={`Changes to ${run.message_id ?? 'the event'}`} before="Before" after="After" /> : null}
            {!run.error && run.changes.length === 0 && !run.dropped ? <p class="muted">The code returned the event unchanged.</p> : null}
            <div class="row">
              <div class="grow"><h4>Before</h4><JsonView value={run.before} label={`Before: ${run.message_id ?? ''}`} /></div>
              <div class="grow"><h4>After</h4>{run.dropped ? <p>Dropped (the code returned nothing).</p> : <JsonView value={run.after ?? null} label={`After: ${run.message_id ?? ''}`} />}</div>
            </div>
            <ConsoleLines lines={run.logs} label="Console output" />
          </div>
        </details>
      ))}
    </>
  );
}
