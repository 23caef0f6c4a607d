import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';

import type { EventTrace } from '../types';
import { json, visibleText } from '../format';
import { Name, Time } from './text';

export function Notice(props: { kind: 'error' | 'success' | 'info'; children: ComponentChildren }) {
  // Errors interrupt (alert); successes and information are announced politely.
  return (
    <div class={`notice notice-${props.kind}`} role={props.kind === 'error' ? 'alert' : 'status'}>
      {props.children}
    </div>
  );
}

export function Loading(props: { label?: string }) {
  return <p class="muted" role="status">{props.label ?? 'Loading…'}</p>;
}

export function JsonView(props: { value: unknown; label: string }) {
  return (
    <pre class="json" tabIndex={0} aria-label={props.label}>
      <code>{json(props.value)}</code>
    </pre>
  );
}

export function CopyButton(props: { text: string; label: string; class?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
      setState('copied');
    } catch {
      setState('failed');
    }
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setState('idle'), 2500);
  };
  return (
    <span class="copy">
      <button type="button" class={props.class ?? 'secondary small'} onClick={copy}>
        {props.label}
      </button>
      <span class="copy-state" role="status">
        {state === 'copied' ? 'Copied' : state === 'failed' ? 'Select the text and press Ctrl+C' : ''}
      </span>
    </span>
  );
}

export function StatusBadge(props: { value: string }) {
  return <span class={`badge badge-${props.value.replace(/[^a-z_]/g, '')}`}>{props.value.replace(/_/g, ' ')}</span>;
}

/** An event's trace: each stage with its status, its time (the browser's zone named), the
 * destination it concerns (by name when `destinations` knows it) and its reason. */
export function TraceView(props: { trace: EventTrace; destinations?: Map<string, string> }) {
  const { trace } = props;
  return (
    <div>
      <p>
        <strong>{trace.state === 'processed' ? 'Processed' : 'Processing'}</strong>
        {trace.event_type ? <> · {trace.event_type}</> : null}
      </p>
      <ol class="trace">
        {trace.stages.map((stage, index) => (
          <li key={index} class={`stage stage-${stage.status}`}>
            <span class="stage-name">{stage.stage.replace(/_/g, ' ')}</span>
            <StatusBadge value={stage.status} />
            <span class="muted"><Time iso={stage.at} /></span>
            {stage.destination_id ? <span class="muted">{stage.stage === 'consent_denied' ? 'held back from' : 'to'} <Name text={props.destinations?.get(stage.destination_id) ?? stage.destination_id} /></span> : null}
            {stage.reason ? <div class="stage-reason">{visibleText(stage.reason)}</div> : null}
          </li>
        ))}
      </ol>
    </div>
  );
}

/** Moves focus between the `[data-row]` buttons of a list with the arrow keys. */
export function onListKeys(event: KeyboardEvent): void {
  if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp' && event.key !== 'Home' && event.key !== 'End') return;
  const container = event.currentTarget as HTMLElement;
  const rows = Array.from(container.querySelectorAll<HTMLElement>('[data-row]'));
  if (rows.length === 0) return;
  const index = rows.indexOf(document.activeElement as HTMLElement);
  let next = index;
  if (event.key === 'ArrowDown') next = Math.min(index + 1, rows.length - 1);
  if (event.key === 'ArrowUp') next = Math.max(index - 1, 0);
  if (event.key === 'Home') next = 0;
  if (event.key === 'End') next = rows.length - 1;
  event.preventDefault();
  rows[next]?.focus();
}
