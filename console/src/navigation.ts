// Opening one page from another with a filter set, without putting the filter in the URL
// (page routes carry only the page's name: docs/CONSOLE.md).

export interface LiveFilters {
  source_id: string;
  event_type: string;
  event_name: string;
}

let pendingLiveFilters: Partial<LiveFilters> | null = null;

/** Open the Live debugger filtered (e.g. to the source a test event was just sent to). */
export function openLive(filters: Partial<LiveFilters>): void {
  pendingLiveFilters = filters;
  window.location.hash = '#/live';
}

/** The filters another page asked the Live debugger to open with, once. */
export function takeLiveFilters(): Partial<LiveFilters> | null {
  const taken = pendingLiveFilters;
  pendingLiveFilters = null;
  return taken;
}
