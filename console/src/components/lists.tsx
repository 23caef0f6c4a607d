// A list of the management API at real-workspace scale (hundreds of sources, destinations,
// contracts): searched and paged on the server, newest first, hostile names kept in their cells,
// and the outcome of an action shown at the row it concerns.
//
// Usage (pages/Sources.tsx is the worked example):
//
//   const list = usePagedList<EventSource>(api, '/event-keys', { visibleStatus: 'active' });
//   <ListControls list={list} idPrefix="sources" noun="sources" hiddenLabel="revoked" />
//   <PagedTable list={list} caption="Event sources" noun="sources" columns={[
//     { header: 'Name', rowHeader: true, cell: (s) => <Name text={s.name} /> },
//     { header: 'Created', width: '11rem', cell: (s) => <Time iso={s.created_at} /> },
//   ]} detail={(s) => (s.id === noticeFor ? <Notice kind="success">…</Notice> : null)} />
//
// - After creating an item, `list.pin(created)` puts it at the top (whatever the search), so the
//   row and its confirmation (from `detail`) are in view without scrolling.
// - After changing one, `list.update(changed)` shows its new state in place, even when the
//   status filter would now hide it (a revoked source keeps its row and its confirmation until
//   the filters change).
// - `detail(item)` renders a full-width row under the item (a confirmation, an error, a panel).
// - On a phone (< 900 px) the table becomes one card per row: the row header (its name) and
//   columns with a hidden header (actions) take a whole line, the other values two a line, each
//   under its column's header.

import type { ComponentChild, ComponentChildren } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';

import type { Api } from '../api';
import { visibleText } from '../format';
import { Notice } from './common';
import { useDebounced } from '../hooks';
import { type Paged, usePaged } from './paged';

export const PAGE_SIZE = 50;
// The longest option text of a <select> naming user-chosen things: a select is as wide as its
// longest option, so one 200-character name would push the whole form off a phone's screen.
export const OPTION_LABEL_LENGTH = 60;

export interface ListItem {
  id: string;
}

/** A `Paged` list (its `items`: pinned ones first, then the pages loaded so far, newest
 * first) with its search, status filter and in-place changes. */
export interface PagedList<T extends ListItem> extends Paged<T> {
  search: string;
  setSearch: (text: string) => void;
  /** Whether items out of `visibleStatus` (revoked, archived...) are listed too. */
  showHidden: boolean;
  setShowHidden: (show: boolean) => void;
  /** Whether a search or the status filter leaves items out. */
  filtering: boolean;
  /** Puts an item just created at the top of the list, whatever the search. */
  pin: (item: T) => void;
  /** Shows an item's new state in place, even when the status filter would now hide it. */
  update: (item: T) => void;
}

/** The list at `path` (a workspace path such as '/event-keys'); with `visibleStatus`, only the
 * items of that status are asked for until `showHidden` is set. */
export function usePagedList<T extends ListItem>(
  api: Api,
  path: string,
  options: { visibleStatus?: string; pageSize?: number } = {},
): PagedList<T> {
  const [search, setSearch] = useState('');
  const [showHidden, setShowHidden] = useState(false);
  const [pinned, setPinned] = useState<T[]>([]);
  const [changed, setChanged] = useState<Record<string, T>>({});
  const settled = useDebounced(search.trim());
  const status = options.visibleStatus && !showHidden ? options.visibleStatus : undefined;
  const paged = usePaged<T>(api, path, { q: settled, status }, options.pageSize ?? PAGE_SIZE);

  // New filters bring a new first page from the server, which has the truth about every item.
  useEffect(() => {
    setPinned([]);
    setChanged({});
  }, [settled, status]);

  const items = useMemo(() => {
    const pinnedIds = new Set(pinned.map((item) => item.id));
    const merged = [...pinned, ...paged.items.filter((item) => !pinnedIds.has(item.id))];
    return merged.map((item) => changed[item.id] ?? item);
  }, [pinned, paged.items, changed]);

  const unlisted = pinned.filter((item) => !paged.items.some((listed) => listed.id === item.id)).length;
  return {
    items,
    total: paged.total === null ? null : paged.total + unlisted,
    hasMore: paged.hasMore,
    loading: paged.loading,
    error: paged.error,
    loadMore: paged.loadMore,
    reload: () => {
      setPinned([]);
      setChanged({});
      paged.reload();
    },
    search,
    setSearch,
    showHidden,
    setShowHidden,
    filtering: settled !== '' || status !== undefined,
    pin: (item) => setPinned((previous) => [item, ...previous.filter((p) => p.id !== item.id)]),
    update: (item) => {
      setChanged((previous) => ({ ...previous, [item.id]: item }));
      setPinned((previous) => previous.map((p) => (p.id === item.id ? item : p)));
    },
  };
}

/** The search box, the "show revoked" switch and the count of a paged list. */
export function ListControls<T extends ListItem>(props: {
  list: PagedList<T>;
  /** Prefix of the controls' ids, unique on the page. */
  idPrefix: string;
  /** The items' plural noun: "sources". */
  noun: string;
  /** What `visibleStatus` hides, for the switch's label ("revoked"); no switch when absent. */
  hiddenLabel?: string;
}) {
  const { list } = props;
  const searchId = `${props.idPrefix}-search`;
  return (
    <div class="list-controls" role="search" aria-label={`Search ${props.noun}`}>
      <div class="field grow">
        <label for={searchId}>Search {props.noun} by name</label>
        <input
          id={searchId}
          type="search"
          value={list.search}
          maxLength={200}
          autoComplete="off"
          onInput={(e) => list.setSearch((e.currentTarget as HTMLInputElement).value)}
        />
      </div>
      {props.hiddenLabel ? (
        <label class="check">
          <input
            type="checkbox"
            checked={list.showHidden}
            onChange={(e) => list.setShowHidden((e.currentTarget as HTMLInputElement).checked)}
          />
          Show {props.hiddenLabel} {props.noun}
        </label>
      ) : null}
      <p class="list-count" role="status" data-testid="list-count">
        {list.total === null ? 'Loading…' : countText(list.items.length, list.total, props.noun)}
      </p>
    </div>
  );
}

function countText(shown: number, total: number, noun: string): string {
  if (total === 0) return `0 ${noun}`;
  // Nouns are regular plurals (sources, destinations, contracts...): one drops its "s".
  if (total === 1) return `1 ${noun.replace(/s$/, '')}`;
  if (shown >= total) return `${total.toLocaleString()} ${noun}, newest first`;
  return `Showing ${shown.toLocaleString()} of ${total.toLocaleString()} ${noun}, newest first`;
}

export interface Column<T> {
  /** The header; on a phone, the label of each value. */
  header: string;
  cell: (item: T) => ComponentChild;
  /** A CSS width on a desktop (the table's layout is fixed: content never widens a column);
   * columns without one share the rest. */
  width?: string;
  /** The column that names the row (one per table): a row header. */
  rowHeader?: boolean;
  /** A header only screen readers read (e.g. "Actions"). */
  hiddenHeader?: boolean;
  class?: string;
}

/** The table of a paged list, with "Load more" under it. */
export function PagedTable<T extends ListItem>(props: {
  list: PagedList<T>;
  caption: string;
  noun: string;
  columns: Column<T>[];
  rowClass?: (item: T) => string | undefined;
  /** A full-width row under the item (a confirmation, an error, a panel), or null. */
  detail?: (item: T) => ComponentChildren | null;
  /** Shown when the workspace has no item at all (nothing searched or hidden). */
  empty?: ComponentChildren;
}) {
  const { list, columns } = props;
  if (list.error && list.items.length === 0) return <Notice kind="error">{list.error}</Notice>;
  if (list.total === 0 && list.items.length === 0) {
    return <p class="muted">{list.filtering || !props.empty ? `No ${props.noun} match.` : props.empty}</p>;
  }
  return (
    <div class="paged-list">
      <div class="table-wrap">
        <table class="paged">
          <caption class="visually-hidden">{props.caption}</caption>
          <colgroup>
            {columns.map((column) => (
              <col key={column.header} style={column.width ? { width: column.width } : undefined} />
            ))}
          </colgroup>
          <thead>
            <tr>
              {columns.map((column) => (
                <th key={column.header} scope="col" class={column.class}>
                  {column.hiddenHeader ? <span class="visually-hidden">{column.header}</span> : column.header}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {list.items.map((item) => {
              const detail = props.detail?.(item) ?? null;
              return [
                <tr key={item.id} class={props.rowClass?.(item)} data-testid="list-row">
                  {columns.map((column) => {
                    const label = column.hiddenHeader ? undefined : column.header;
                    return column.rowHeader ? (
                      <th key={column.header} scope="row" class={column.class}>
                        {column.cell(item)}
                      </th>
                    ) : (
                      <td key={column.header} class={column.class} data-label={label}>
                        {column.cell(item)}
                      </td>
                    );
                  })}
                </tr>,
                detail === null ? null : (
                  <tr key={`${item.id}-detail`} class="row-detail">
                    <td colSpan={columns.length}>{detail}</td>
                  </tr>
                ),
              ];
            })}
          </tbody>
        </table>
      </div>
      <div class="load-more">
        {list.error ? <Notice kind="error">{list.error}</Notice> : null}
        {list.hasMore ? (
          <button type="button" class="secondary" disabled={list.loading} onClick={list.loadMore}>
            {list.loading ? 'Loading…' : `Load ${PAGE_SIZE} more ${props.noun}`}
          </button>
        ) : null}
      </div>
    </div>
  );
}

/** The text of an <option> naming a user-chosen thing: control characters escaped, cut to
 * `max` characters with an ellipsis. Give the option the whole name as its title:
 * `<option value={s.id} title={visibleText(s.name)}>{optionLabel(s.name)}</option>`, or use
 * <NameOption>. */
export function optionLabel(name: string, max = OPTION_LABEL_LENGTH): string {
  const shown = visibleText(name);
  const characters = Array.from(shown); // by code point: an emoji is never cut in half
  return characters.length > max ? `${characters.slice(0, max - 1).join('')}…` : shown;
}

/** An <option> naming a user-chosen thing (see optionLabel). */
export function NameOption(props: { value: string; name: string }) {
  return (
    <option value={props.value} title={visibleText(props.name)}>
      {optionLabel(props.name)}
    </option>
  );
}
