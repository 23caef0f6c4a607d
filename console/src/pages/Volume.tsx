import { useEffect, useRef, useState } from 'preact/hooks';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';

import { type Api, messageOf } from '../api';
import { Loading } from '../components/common';
import { Day, SourcePicker } from '../components/investigate';
import { Name, Time } from '../components/text';
import { plural, timeZone } from '../format';
import type { VolumeRow } from '../types';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
Chart.defaults.font.size = 13;
Chart.defaults.color = '#1f2933';

// Windows up to 3 days are drawn per hour; 7 days and more per day (720 hourly bars are slivers).
const WINDOWS = [
  { hours: 6, label: 'Last 6 hours' },
  { hours: 12, label: 'Last 12 hours' },
  { hours: 24, label: 'Last 24 hours' },
  { hours: 48, label: 'Last 48 hours' },
  { hours: 72, label: 'Last 3 days (hourly)' },
  { hours: 168, label: 'Last 7 days' },
  { hours: 336, label: 'Last 14 days' },
  { hours: 720, label: 'Last 30 days' },
];
const DAILY_FROM_HOURS = 168;
const MAX_SERIES = 10;
// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000', '#7F3C8D', '#8C8C8C', '#A6761D'];
const HOUR_MS = 3600 * 1000;

type GroupBy = 'type' | 'name';
type Granularity = 'hour' | 'day';

interface VolumeRequest {
  hours: number;
  granularity: Granularity;
  time_zone: string;
  source_id: string;
}

interface Series {
  label: string;
  counts: number[];
  total: number;
}

function seriesLabel(row: VolumeRow, groupBy: GroupBy): string {
  if (groupBy === 'type') return row.event_type;
  return row.event_name ? `${row.event_type} · ${row.event_name}` : row.event_type;
}

/** Every bucket of the window, oldest first: the start of each hour, or of each day at midnight
 * in the browser's zone (the zone the daily counts were asked in). */
export function bucketsOf(request: VolumeRequest, now = Date.now()): number[] {
  if (request.granularity === 'hour') {
    const last = Math.floor(now / HOUR_MS) * HOUR_MS;
    return Array.from({ length: request.hours }, (_, i) => last - (request.hours - 1 - i) * HOUR_MS);
  }
  const days = Math.ceil(request.hours / 24);
  const today = new Date(now);
  // Calendar arithmetic, not 24-hour steps: a day across a change of time lasts 23 or 25 hours.
  return Array.from({ length: days }, (_, i) =>
    new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1 - i)).getTime(),
  );
}

/** Each series' count per bucket (zero-filled), the top ones and "Other". */
export function buildSeries(rows: VolumeRow[], buckets: number[], groupBy: GroupBy) {
  const index = new Map(buckets.map((t, i) => [t, i]));
  const byLabel = new Map<string, Series>();
  for (const row of rows) {
    const at = index.get(Date.parse(row.hour_bucket ?? row.day_bucket ?? ''));
    if (at === undefined) continue;
    const label = seriesLabel(row, groupBy);
    let series = byLabel.get(label);
    if (!series) {
      series = { label, counts: new Array<number>(buckets.length).fill(0), total: 0 };
      byLabel.set(label, series);
    }
    series.counts[at] += row.event_count;
    series.total += row.event_count;
  }
  let series = [...byLabel.values()].sort((a, b) => b.total - a.total || a.label.localeCompare(b.label));
  if (series.length > MAX_SERIES) {
    const rest = series.slice(MAX_SERIES - 1);
    const other: Series = { label: `Other (${rest.length})`, counts: new Array<number>(buckets.length).fill(0), total: 0 };
    for (const s of rest) {
      s.counts.forEach((c, i) => { other.counts[i] += c; });
      other.total += s.total;
    }
    series = [...series.slice(0, MAX_SERIES - 1), other];
  }
  return series;
}

function bucketLabel(time: number, request: VolumeRequest): string {
  const date = new Date(time);
  if (request.granularity === 'day') {
    return date.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
  }
  const clock = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false });
  if (request.hours <= 24) return clock;
  return `${date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${clock}`;
}

function windowLabel(request: VolumeRequest): string {
  return WINDOWS.find((w) => w.hours === request.hours)?.label.replace(' (hourly)', '') ?? `Last ${request.hours} hours`;
}

interface Loaded {
  key: string;
  request: VolumeRequest;
  rows: VolumeRow[];
  at: number;
}

export function VolumePage(props: { api: Api }) {
  const { api } = props;
  const [hours, setHours] = useState(24);
  const [groupBy, setGroupBy] = useState<GroupBy>('name');
  const [sourceId, setSourceId] = useState('');
  const [tick, setTick] = useState(0);
  const request: VolumeRequest = {
    hours,
    granularity: hours >= DAILY_FROM_HOURS ? 'day' : 'hour',
    time_zone: timeZone(),
    source_id: sourceId,
  };
  const key = JSON.stringify(request);
  // What is drawn is always a whole answer with the request it answers: while another loads, the
  // old one stays under its own title (dimmed), never under the new window's labels.
  const [shown, setShown] = useState<Loaded | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    const asked = { ...request };
    setLoading(true);
    setError(null);
    api
      .get<VolumeRow[]>('/events/volume', { ...asked }, controller.signal)
      .then((rows) => {
        if (controller.signal.aborted) return;
        setShown({ key, request: asked, rows, at: Date.now() });
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setError(messageOf(err));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, key, tick]);

  const current = shown && !error ? shown : null;
  const stale = loading && current !== null && current.key !== key;

  return (
    <div class="stack">
      <div class="toolbar card" role="group" aria-label="Volume options">
        <div class="field">
          <label for="volume-hours">Window</label>
          <select id="volume-hours" value={String(hours)} onChange={(e) => setHours(Number((e.currentTarget as HTMLSelectElement).value))}>
            {WINDOWS.map((w) => <option key={w.hours} value={String(w.hours)}>{w.label}</option>)}
          </select>
        </div>
        <SourcePicker api={api} id="volume-source" value={sourceId} onChange={setSourceId} />
        <fieldset class="field radios">
          <legend>Group by</legend>
          <label><input type="radio" name="group-by" value="type" checked={groupBy === 'type'} onChange={() => setGroupBy('type')} /> Event type</label>
          <label><input type="radio" name="group-by" value="name" checked={groupBy === 'name'} onChange={() => setGroupBy('name')} /> Type and name</label>
        </fieldset>
        <div class="toolbar-end">
          <button type="button" class="secondary" disabled={loading} onClick={() => setTick((t) => t + 1)}>Refresh</button>
        </div>
      </div>
      {error ? (
        <div class="notice notice-error volume-error" role="alert" data-testid="volume-error">
          <span>The volume of the {windowLabel(request).toLowerCase()} could not be loaded: {error}</span>{' '}
          <button type="button" class="secondary small" onClick={() => setTick((t) => t + 1)}>Try again</button>
        </div>
      ) : null}
      {loading ? (
        <Loading label={`Counting events per ${request.granularity} for the ${windowLabel(request).toLowerCase()}…`} />
      ) : null}
      {current ? <VolumeView loaded={current} groupBy={groupBy} stale={stale} /> : null}
    </div>
  );
}

function VolumeView(props: { loaded: Loaded; groupBy: GroupBy; stale: boolean }) {
  const { request, rows } = props.loaded;
  const { groupBy } = props;
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<'bar'> | null>(null);
  const buckets = bucketsOf(request, props.loaded.at);
  const series = buildSeries(rows, buckets, groupBy);
  const total = series.reduce((sum, s) => sum + s.total, 0);
  const unit = request.granularity;
  const zone = request.time_zone;

  useEffect(() => {
    if (!canvas.current) return;
    const data = {
      labels: buckets.map((t) => bucketLabel(t, request)),
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.counts,
        backgroundColor: PALETTE[i % PALETTE.length],
        borderWidth: 0,
      })),
    };
    const axisTitle = `events per ${unit}`;
    const xTitle = `${unit === 'day' ? 'day' : 'hour'} (${zone})`;
    if (chart.current) {
      chart.current.data = data;
      chart.current.options.scales!.y!.title!.text = axisTitle;
      chart.current.options.scales!.x!.title!.text = xTitle;
      chart.current.update();
      return;
    }
    chart.current = new Chart(canvas.current, {
      type: 'bar',
      data,
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { stacked: true, ticks: { color: '#1f2933', maxRotation: 0, autoSkip: true, maxTicksLimit: 12 }, grid: { display: false }, title: { display: true, text: xTitle, color: '#1f2933' } },
          y: { stacked: true, beginAtZero: true, ticks: { color: '#1f2933', precision: 0 }, title: { display: true, text: axisTitle, color: '#1f2933' } },
        },
        plugins: {
          legend: { position: 'bottom', labels: { color: '#1f2933', boxWidth: 14 } },
          tooltip: { enabled: true },
        },
      },
    });
  });

  useEffect(() => () => { chart.current?.destroy(); chart.current = null; }, []);

  const span = windowLabel(request).toLowerCase();
  const summary = `Stacked bar chart of event counts per ${unit} over the ${span}: ${plural(total, 'event')} in ${plural(series.length, 'series', 'series')}.`;
  const peakOf = (s: Series) => {
    let best = 0;
    s.counts.forEach((c, i) => { if (c > s.counts[best]) best = i; });
    return { count: s.counts[best], time: buckets[best] };
  };

  return (
    <div class={`stack volume-view ${props.stale ? 'stale' : ''}`} aria-busy={props.stale} data-testid="volume-view" data-window={String(request.hours)}>
      <section class="card" aria-labelledby="volume-title">
        <h2 id="volume-title">
          Events per {unit}, {span} <span class="muted" data-testid="volume-total">{plural(total, 'event')}</span>
        </h2>
        <p class="help">
          {unit === 'day' ? `Days from midnight in ${zone}.` : `Hours shown in ${zone}.`}
          {request.source_id ? <> One source: <code>{request.source_id}</code>.</> : ' All sources.'}
        </p>
        <div class="chart-box">
          <canvas ref={canvas} role="img" aria-label={summary} data-testid="volume-chart">{summary}</canvas>
        </div>
        {total === 0 ? <p class="muted">No events stored in this window yet.</p> : null}
      </section>
      {series.length > 0 ? (
        <section class="card" aria-labelledby="volume-table-title">
          <h2 id="volume-table-title">Totals</h2>
          <div class="table-wrap">
            <table class="volume-totals">
              <caption class="visually-hidden">Events per series over the {span}</caption>
              <thead>
                <tr>
                  <th scope="col">{groupBy === 'type' ? 'Event type' : 'Event type and name'}</th>
                  <th scope="col" class="num">Events</th>
                  <th scope="col" class="num">Share</th>
                  <th scope="col">{unit === 'day' ? 'Peak day' : 'Peak hour'}</th>
                </tr>
              </thead>
              <tbody>
                {series.map((s, i) => {
                  const peak = peakOf(s);
                  return (
                    <tr key={s.label}>
                      <th scope="row" data-label="Series"><span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} aria-hidden="true" /> <Name text={s.label} /></th>
                      <td class="num" data-label="Events">{s.total.toLocaleString()}</td>
                      <td class="num" data-label="Share">{total ? `${((100 * s.total) / total).toFixed(1)}%` : '—'}</td>
                      <td data-testid="peak" data-label={unit === 'day' ? 'Peak day' : 'Peak hour'}>
                        {peak.count.toLocaleString()} {unit === 'day' ? 'on' : 'at'}{' '}
                        {unit === 'day' ? <Day time={peak.time} /> : <Time iso={new Date(peak.time).toISOString()} />}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </section>
      ) : null}
    </div>
  );
}
