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

import type { Api } from '../api';
import { Loading, Notice } from '../components/common';
import { plural } from '../format';
import { useLoad } from '../hooks';
import type { VolumeRow } from '../types';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
Chart.defaults.font.size = 13;
Chart.defaults.color = '#1f2933';

const HOURS = [6, 12, 24, 48, 72, 168, 336, 720];
const MAX_SERIES = 10;
// Okabe-Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000', '#7F3C8D', '#8C8C8C', '#A6761D'];
const HOUR_MS = 3600 * 1000;

type GroupBy = 'type' | 'name';

interface Series {
  label: string;
  counts: number[];
  total: number;
}

function seriesLabel(row: VolumeRow, groupBy: GroupBy): string {
  if (groupBy === 'type') return row.event_type;
  return row.event_name ? `${row.event_type} · ${row.event_name}` : row.event_type;
}

/** Every hour of the window, oldest first, with each series' count (zero-filled). */
export function buildSeries(rows: VolumeRow[], hours: number, groupBy: GroupBy, now = Date.now()) {
  const last = Math.floor(now / HOUR_MS) * HOUR_MS;
  const buckets = Array.from({ length: hours }, (_, i) => last - (hours - 1 - i) * HOUR_MS);
  const index = new Map(buckets.map((t, i) => [t, i]));
  const byLabel = new Map<string, Series>();
  for (const row of rows) {
    const at = index.get(Date.parse(row.hour_bucket));
    if (at === undefined) continue;
    const label = seriesLabel(row, groupBy);
    let series = byLabel.get(label);
    if (!series) {
      series = { label, counts: new Array<number>(hours).fill(0), total: 0 };
      byLabel.set(label, series);
    }
    series.counts[at] += row.event_count;
    series.total += row.event_count;
  }
  let series = [...byLabel.values()].sort((a, b) => b.total - a.total || a.label.localeCompare(b.label));
  if (series.length > MAX_SERIES) {
    const rest = series.slice(MAX_SERIES - 1);
    const other: Series = { label: `Other (${rest.length})`, counts: new Array<number>(hours).fill(0), total: 0 };
    for (const s of rest) {
      s.counts.forEach((c, i) => { other.counts[i] += c; });
      other.total += s.total;
    }
    series = [...series.slice(0, MAX_SERIES - 1), other];
  }
  return { buckets, series };
}

function hourLabel(time: number, hours: number): string {
  const date = new Date(time);
  const clock = date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hour12: false });
  if (hours <= 24) return clock;
  return `${date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${clock}`;
}

export function VolumePage(props: { api: Api }) {
  const { api } = props;
  const [hours, setHours] = useState(24);
  const [groupBy, setGroupBy] = useState<GroupBy>('name');
  const volume = useLoad((signal) => api.get<VolumeRow[]>('/events/volume', { hours }, signal), [api, hours]);
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<'bar'> | null>(null);

  const { buckets, series } = buildSeries(volume.data ?? [], hours, groupBy);
  const total = series.reduce((sum, s) => sum + s.total, 0);

  useEffect(() => {
    if (!canvas.current || !volume.data) return;
    const data = {
      labels: buckets.map((t) => hourLabel(t, hours)),
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.counts,
        backgroundColor: PALETTE[i % PALETTE.length],
        borderWidth: 0,
      })),
    };
    if (chart.current) {
      chart.current.data = data;
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
          x: { stacked: true, ticks: { color: '#1f2933', maxRotation: 0, autoSkip: true, maxTicksLimit: 12 }, grid: { display: false } },
          y: { stacked: true, beginAtZero: true, ticks: { color: '#1f2933', precision: 0 }, title: { display: true, text: 'events per hour', color: '#1f2933' } },
        },
        plugins: {
          legend: { position: 'bottom', labels: { color: '#1f2933', boxWidth: 14 } },
          tooltip: { enabled: true },
        },
      },
    });
  });

  useEffect(() => () => { chart.current?.destroy(); chart.current = null; }, []);

  const summary = `Stacked bar chart of hourly event counts over the last ${hours} hours: ${plural(total, 'event')} in ${plural(series.length, 'series', 'series')}.`;

  return (
    <div class="stack">
      <div class="toolbar card" role="group" aria-label="Volume options">
        <div class="field">
          <label for="volume-hours">Hours</label>
          <select id="volume-hours" value={String(hours)} onChange={(e) => setHours(Number((e.currentTarget as HTMLSelectElement).value))}>
            {HOURS.map((h) => <option key={h} value={String(h)}>{h <= 72 ? `Last ${h} hours` : `Last ${h / 24} days`}</option>)}
          </select>
        </div>
        <fieldset class="field radios">
          <legend>Group by</legend>
          <label><input type="radio" name="group-by" value="type" checked={groupBy === 'type'} onChange={() => setGroupBy('type')} /> Event type</label>
          <label><input type="radio" name="group-by" value="name" checked={groupBy === 'name'} onChange={() => setGroupBy('name')} /> Type and name</label>
        </fieldset>
        <div class="toolbar-end">
          <button type="button" class="secondary" onClick={volume.reload}>Refresh</button>
        </div>
      </div>
      {volume.error ? <Notice kind="error">{volume.error}</Notice> : null}
      {volume.loading && !volume.data ? <Loading label="Counting events…" /> : null}
      <section class="card" aria-labelledby="volume-title">
        <h2 id="volume-title">
          Events per hour <span class="muted" data-testid="volume-total">{plural(total, 'event')}</span>
        </h2>
        <div class="chart-box">
          <canvas ref={canvas} role="img" aria-label={summary} data-testid="volume-chart">{summary}</canvas>
        </div>
        {volume.data && total === 0 ? <p class="muted">No events stored in this window yet.</p> : null}
      </section>
      {series.length > 0 ? (
        <section class="card" aria-labelledby="volume-table-title">
          <h2 id="volume-table-title">Totals</h2>
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Events per series over the window</caption>
              <thead>
                <tr><th scope="col">{groupBy === 'type' ? 'Event type' : 'Event type and name'}</th><th scope="col" class="num">Events</th><th scope="col" class="num">Share</th><th scope="col" class="num">Peak hour</th></tr>
              </thead>
              <tbody>
                {series.map((s, i) => (
                  <tr key={s.label}>
                    <th scope="row"><span class="swatch" style={{ background: PALETTE[i % PALETTE.length] }} aria-hidden="true" /> {s.label}</th>
                    <td class="num">{s.total.toLocaleString()}</td>
                    <td class="num">{total ? `${((100 * s.total) / total).toFixed(1)}%` : '—'}</td>
                    <td class="num">{Math.max(...s.counts).toLocaleString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ) : null}
    </div>
  );
}
