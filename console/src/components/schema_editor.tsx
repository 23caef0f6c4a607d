// The contract schema editor: a textarea with line numbers whose text is checked as it is typed,
// JSON syntax here (with its line and column), the schema itself by the API's own check
// (POST /event-contracts/validate-schema), so the editor never says anything create would not.

import { useEffect, useRef, useState } from 'preact/hooks';

import { type Api, ApiError, messageOf } from '../api';
import type { SchemaCheckResult } from '../types';

// Typing pauses this long before the server is asked.
export const CHECK_DELAY_MS = 400;

export type SchemaState =
  | { kind: 'empty' }
  | { kind: 'checking' }
  | { kind: 'valid'; form: SchemaCheckResult['form'] }
  | { kind: 'invalid'; message: string; line: number | null; column: number | null; field: string | null }
  | { kind: 'unchecked'; message: string };

/** Line and column (1-based) of a character offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

/** Where JSON.parse stopped: V8 names the position ("at position 42", sometimes "(line 3
 * column 5)"); a text that ends too early stops at its end. */
function jsonErrorPlace(text: string, message: string): { line: number; column: number } {
  const named = /line (\d+) column (\d+)/.exec(message);
  if (named) return { line: Number(named[1]), column: Number(named[2]) };
  const position = /position (\d+)/.exec(message);
  return lineColumn(text, position ? Number(position[1]) : text.length);
}

/** The line of a field the API named (`schema_definition.properties.total.type`): each key of
 * the path looked for, in order, after the previous one. Best effort: null when not found. */
export function lineOfField(text: string, field: string | null): number | null {
  if (!field) return null;
  const keys = field.split('.').slice(1);
  if (keys.length === 0) return null;
  let from = 0;
  for (const key of keys) {
    const found = text.indexOf(JSON.stringify(key), from);
    if (found < 0) return null;
    from = found + 1;
  }
  return lineColumn(text, from - 1).line;
}

/** Checks `text` as the user types: locally for JSON syntax, then (debounced) by the API. */
export function useSchemaCheck(api: Api, text: string): SchemaState {
  const [state, setState] = useState<SchemaState>({ kind: 'empty' });
  useEffect(() => {
    if (!text.trim()) {
      setState({ kind: 'empty' });
      return;
    }
    let definition: unknown;
    try {
      definition = JSON.parse(text);
    } catch (error) {
      const message = messageOf(error);
      const { line, column } = jsonErrorPlace(text, message);
      setState({ kind: 'invalid', message: `Not valid JSON: ${message}`, line, column, field: null });
      return;
    }
    setState({ kind: 'checking' });
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      api
        .request<SchemaCheckResult>('POST', '/event-contracts/validate-schema', {
          body: { schema_definition: definition },
          signal: controller.signal,
        })
        .then((result) => setState({ kind: 'valid', form: result.form }))
        .catch((error: unknown) => {
          if (controller.signal.aborted) return;
          if (error instanceof ApiError && error.status === 400) {
            const line = lineOfField(text, error.field);
            setState({ kind: 'invalid', message: error.message, line, column: null, field: error.field });
          } else {
            setState({ kind: 'unchecked', message: `The schema could not be checked: ${messageOf(error)}` });
          }
        });
    }, CHECK_DELAY_MS);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [api, text]);
  return state;
}

export function SchemaEditor(props: { id: string; value: string; onInput: (text: string) => void; state: SchemaState }) {
  const { id, value, state } = props;
  const gutter = useRef<HTMLPreElement>(null);
  const lineCount = value.split('\n').length;
  const errorLine = state.kind === 'invalid' ? state.line : null;
  const messageId = `${id}-check`;

  return (
    <div class="stack-tight">
      <div class="schema-editor">
        <pre class="schema-gutter" ref={gutter} aria-hidden="true">
          {Array.from({ length: lineCount }, (_, index) => (
            <span key={index} class={index + 1 === errorLine ? 'error-line' : undefined}>{index + 1}{'\n'}</span>
          ))}
        </pre>
        <textarea
          id={id}
          class="code-input schema-text"
          rows={14}
          spellcheck={false}
          wrap="off"
          value={value}
          aria-invalid={state.kind === 'invalid'}
          aria-describedby={messageId}
          onInput={(event) => props.onInput((event.currentTarget as HTMLTextAreaElement).value)}
          onScroll={(event) => {
            if (gutter.current) gutter.current.scrollTop = (event.currentTarget as HTMLTextAreaElement).scrollTop;
          }}
        />
      </div>
      <SchemaMessage id={messageId} state={state} />
    </div>
  );
}

function SchemaMessage(props: { id: string; state: SchemaState }) {
  const { state } = props;
  if (state.kind === 'invalid') {
    const place = state.line ? ` (line ${state.line}${state.column ? `, column ${state.column}` : ''})` : '';
    return (
      <p id={props.id} class="schema-check schema-invalid" role="alert" data-testid="schema-check">
        {state.message}{place}
      </p>
    );
  }
  const text =
    state.kind === 'empty'
      ? 'Write the schema: the compact form or JSON Schema (draft 2020-12).'
      : state.kind === 'checking'
        ? 'Checking…'
        : state.kind === 'valid'
          ? `Valid ${state.form === 'compact' ? 'compact form' : 'JSON Schema'}.`
          : state.message;
  return (
    <p id={props.id} class={`schema-check ${state.kind === 'valid' ? 'schema-valid' : 'muted'}`} role="status" data-testid="schema-check">
      {text}
    </p>
  );
}
