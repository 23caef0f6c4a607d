// A server-side paged list (the API's `limit`, `cursor`, `q` and `status`, newest first): the
// first page on load and whenever a filter changes, further pages appended on demand.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

import { type Api, type Query, messageOf } from '../api';

export interface Paged<T> {
  items: T[];
  /** How many items match the filters, over every page (X-Total-Count), once known. */
  total: number | null;
  hasMore: boolean;
  loading: boolean;
  error: string | null;
  loadMore: () => void;
  reload: () => void;
}

export function usePaged<T>(api: Api, path: string, filters: Query, pageSize = 50): Paged<T> {
  const [items, setItems] = useState<T[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const key = JSON.stringify(filters);
  // The filters a page was asked with: an answer for older filters is dropped.
  const asked = useRef(key);

  const fetchPage = useCallback(
    async (after: string | null, signal?: AbortSignal): Promise<{ page: T[]; next: string | null; count: number | null }> => {
      let next: string | null = null;
      let count: number | null = null;
      const page = await api.request<T[]>('GET', path, {
        query: { ...filters, limit: pageSize, cursor: after },
        signal,
        onHeaders: (headers) => {
          next = headers.get('X-Next-Cursor');
          const totalHeader = headers.get('X-Total-Count');
          count = totalHeader === null ? null : Number(totalHeader);
        },
      });
      return { page, next, count };
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [api, path, key, pageSize],
  );

  useEffect(() => {
    const controller = new AbortController();
    asked.current = key;
    setLoading(true);
    fetchPage(null, controller.signal)
      .then(({ page, next, count }) => {
        if (controller.signal.aborted) return;
        setItems(page);
        setCursor(next);
        setTotal(count);
        setError(null);
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(messageOf(err));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
  }, [fetchPage, tick]);

  const loadMore = useCallback(() => {
    if (!cursor) return;
    const forKey = key;
    setLoading(true);
    fetchPage(cursor)
      .then(({ page, next, count }) => {
        if (asked.current !== forKey) return;
        setItems((previous) => [...previous, ...page]);
        setCursor(next);
        setTotal(count);
      })
      .catch((err: unknown) => setError(messageOf(err)))
      .finally(() => setLoading(false));
  }, [cursor, fetchPage, key]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { items, total, hasMore: cursor !== null, loading, error, loadMore, reload };
}
