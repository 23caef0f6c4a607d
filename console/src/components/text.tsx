// How user-chosen text and instants are shown everywhere: a name never breaks a layout, and a
// time always says its zone.

import { formatTime, visibleText } from '../format';

/** A user-chosen name (source, destination, contract, event...): one line, cut with an ellipsis
 * at its container's width, control characters shown escaped, the whole text on hover. */
export function Name(props: { text: string | null | undefined; class?: string }) {
  const shown = visibleText(props.text ?? '');
  return (
    <span class={`name ${props.class ?? ''}`} title={shown}>
      {shown || '—'}
    </span>
  );
}

/** An instant in the browser's time zone, named (e.g. "3 Dec 2026, 14:05:09 CET"), with UTC on
 * hover. */
export function Time(props: { iso: string | null | undefined }) {
  if (!props.iso) return <span class="muted">—</span>;
  const date = new Date(props.iso);
  if (Number.isNaN(date.getTime())) return <span>{props.iso}</span>;
  return (
    <time dateTime={props.iso} title={`${date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`}>
      {formatTime(props.iso)}
    </time>
  );
}
