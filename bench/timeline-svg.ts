/**
 * A hand-written SVG chart of the failover timelines: one panel per failover, one strip per
 * client, one bar per 100 ms bucket. Bars above the baseline are acknowledged writes (green:
 * new leader, grey: old leader, purple: another node), bars below it are failed writes
 * (red). Dashed lines mark the failover start, the leader-key move, Consul listing the new
 * leader and its registration as the sole passing primary. A stall is an empty stretch.
 * @module
 */
import type { FailoverResult, FailoverScenarioResult, TimelineSeries } from './failover.js';

const W = 1200;
const LEFT = 130;
const RIGHT = 250;
const STRIP = 58;
const STRIP_GAP = 10;
const PANEL_HEAD = 76;
const AXIS = 34;
const PANEL_GAP = 26;
const TOP = 60;

const COLORS = { new: '#2e7d32', old: '#78909c', other: '#8e24aa', error: '#d32f2f', grid: '#e0e0e0', text: '#212121', muted: '#616161' };
const MARKERS = [
  { key: 'start', label: 'provoked', color: '#212121' },
  { key: 'leaderKey', label: 'leader key moved', color: '#1565c0' },
  { key: 'consulListed', label: 'Consul lists new leader', color: '#ef6c00' },
  { key: 'registered', label: 'sole passing primary', color: '#2e7d32' },
] as const;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function n(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

function panelHeight(s: FailoverScenarioResult): number {
  return PANEL_HEAD + s.timeline.series.length * (STRIP + STRIP_GAP) + AXIS;
}

/**
 * Renders the chart (pure).
 * @param result the failover benchmark's result
 * @param title first line of the chart
 */
export function failoverTimelineSvg(result: FailoverResult, title: string): string {
  const scenarios = result.scenarios;
  const height = TOP + scenarios.reduce((h, s) => h + panelHeight(s) + PANEL_GAP, 0) + 10;
  // One vertical scale for every strip, so stalls and error bursts compare at a glance.
  let yMax = 1;
  for (const s of scenarios) {
    for (const t of s.timeline.series) {
      for (let i = 0; i < t.acksNew.length; i++) yMax = Math.max(yMax, t.acksNew[i]! + t.acksOld[i]! + t.acksOther[i]!);
    }
  }
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${LEFT}" y="22" font-size="16" font-weight="bold" fill="${COLORS.text}">${esc(title)}</text>`);
  // Legend.
  const legend: [string, string][] = [
    [COLORS.new, 'write acked by new leader'],
    [COLORS.old, 'acked by old leader'],
    [COLORS.other, 'acked by another node'],
    [COLORS.error, 'write failed (below the line)'],
  ];
  let lx = LEFT;
  for (const [color, label] of legend) {
    out.push(`<rect x="${lx}" y="34" width="12" height="12" fill="${color}"/>`);
    out.push(`<text x="${lx + 16}" y="44" fill="${COLORS.text}">${esc(label)}</text>`);
    lx += 24 + label.length * 6.6;
  }
  out.push(`<text x="${W - RIGHT + 10}" y="44" fill="${COLORS.muted}">bars: writes per ${scenarios[0]?.timeline.bucketMillis ?? 100} ms (max ${yMax})</text>`);

  let y = TOP;
  for (const s of scenarios) {
    out.push(panel(s, y, yMax));
    y += panelHeight(s) + PANEL_GAP;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function panel(s: FailoverScenarioResult, top: number, yMax: number): string {
  const out: string[] = [];
  const { bucketMillis, fromMs } = s.timeline;
  const buckets = Math.max(1, ...s.timeline.series.map((t) => t.acksNew.length));
  const toMs = fromMs + buckets * bucketMillis;
  const plotW = W - LEFT - RIGHT;
  const x = (ms: number): number => LEFT + ((ms - fromMs) / (toMs - fromMs)) * plotW;
  const kind = s.kind === 'switchover' ? 'switchover' : s.kind === 'kill-postgres' ? "crash: kill -9 of the leader's postmaster" : "crash: kill -9 of the leader's Patroni";
  out.push(`<g>`);
  out.push(`<text x="${LEFT}" y="${top + 16}" font-size="14" font-weight="bold" fill="${COLORS.text}">${esc(`${kind}  (${s.from} → ${s.to})`)}</text>`);
  const stripsTop = top + PANEL_HEAD;
  const stripsBottom = stripsTop + s.timeline.series.length * (STRIP + STRIP_GAP) - STRIP_GAP;
  // Grid every second.
  for (let t = Math.ceil(fromMs / 1000) * 1000; t <= toMs; t += 1000) {
    const gx = x(t);
    out.push(`<line x1="${n(gx)}" y1="${stripsTop}" x2="${n(gx)}" y2="${stripsBottom}" stroke="${COLORS.grid}" stroke-width="1"/>`);
    out.push(`<text x="${n(gx)}" y="${stripsBottom + 16}" text-anchor="middle" fill="${COLORS.muted}">${t === 0 ? '0' : `${t > 0 ? '+' : '−'}${Math.abs(t / 1000)} s`}</text>`);
  }
  out.push(`<text x="${LEFT + plotW / 2}" y="${stripsBottom + 30}" text-anchor="middle" fill="${COLORS.muted}">time relative to the failover being provoked</text>`);
  // Event markers with labels staggered so they never overlap.
  const at: Record<string, number | null> = { start: 0, leaderKey: s.leaderKeyMovedMs, consulListed: s.consulListedMs, registered: s.registeredMs };
  MARKERS.forEach((m, i) => {
    const t = at[m.key];
    if (t === null || t === undefined || t < fromMs || t > toMs) return;
    const mx = x(t);
    const labelY = top + 32 + i * 12; // one row per marker: labels never overlap
    out.push(`<line x1="${n(mx)}" y1="${labelY - 9}" x2="${n(mx)}" y2="${stripsBottom}" stroke="${m.color}" stroke-width="1.5" stroke-dasharray="${m.key === 'start' ? '0' : '5,3'}"/>`);
    const text = `${m.label}${t === 0 ? '' : ` +${(t / 1000).toFixed(2)} s`}`;
    // Right of the line, unless that would run past the plot.
    const leftSide = mx + 8 + text.length * 6 > W - RIGHT;
    out.push(`<text x="${n(mx + (leftSide ? -4 : 4))}" y="${labelY}" text-anchor="${leftSide ? 'end' : 'start'}" font-size="11" fill="${m.color}">${esc(text)}</text>`);
  });
  s.timeline.series.forEach((series, i) => {
    const stripTop = stripsTop + i * (STRIP + STRIP_GAP);
    out.push(strip(s, series, stripTop, x, bucketMillis, fromMs, yMax));
  });
  out.push(`</g>`);
  return out.join('\n');
}

function strip(
  s: FailoverScenarioResult,
  t: TimelineSeries,
  top: number,
  x: (ms: number) => number,
  bucketMillis: number,
  fromMs: number,
  yMax: number,
): string {
  const out: string[] = [];
  const base = top + STRIP * 0.68; // acks above, errors below
  const upH = STRIP * 0.68 - 2;
  const downH = STRIP * 0.32 - 2;
  const plotRight = W - RIGHT;
  out.push(`<rect x="${LEFT}" y="${top}" width="${plotRight - LEFT}" height="${STRIP}" fill="#fafafa" stroke="${COLORS.grid}"/>`);
  out.push(`<text x="${LEFT - 8}" y="${top + STRIP / 2 + 4}" text-anchor="end" font-weight="bold" fill="${COLORS.text}">${esc(t.client)}</text>`);
  const bw = Math.max(0.5, x(fromMs + bucketMillis) - x(fromMs) - 0.6);
  for (let b = 0; b < t.acksNew.length; b++) {
    const bx = x(fromMs + b * bucketMillis) + 0.3;
    let yTop = base;
    for (const [count, color] of [
      [t.acksOld[b]!, COLORS.old],
      [t.acksOther[b]!, COLORS.other],
      [t.acksNew[b]!, COLORS.new],
    ] as const) {
      if (count <= 0) continue;
      const h = (Math.min(count, yMax) / yMax) * upH;
      yTop -= h;
      out.push(`<rect x="${n(bx)}" y="${n(yTop)}" width="${n(bw)}" height="${n(h)}" fill="${color}"/>`);
    }
    const e = t.errors[b]!;
    if (e > 0) {
      const h = Math.max(1.5, (Math.min(e, yMax) / yMax) * downH);
      out.push(`<rect x="${n(bx)}" y="${n(base)}" width="${n(bw)}" height="${n(h)}" fill="${COLORS.error}"/>`);
    }
  }
  out.push(`<line x1="${LEFT}" y1="${n(base)}" x2="${plotRight}" y2="${n(base)}" stroke="#9e9e9e" stroke-width="0.8"/>`);
  // Annotation: what the client went through.
  const c = s.clients.find((r) => r.client === t.client);
  if (c) {
    const first = c.firstNewLeaderWrite.fromLeaderKey;
    const lines = [
      first === null ? 'never wrote to the new leader' : `new leader: ${first >= 0 ? '+' : ''}${first} ms after key move`,
      `longest gap ${c.longestWriteGapMs} ms`,
      `${c.writesFailed} failed writes${c.ackedOnOldLeaderAfterMove > 0 ? `, ${c.ackedOnOldLeaderAfterMove} acked on old leader` : ''}`,
    ];
    lines.forEach((line, k) => {
      out.push(`<text x="${plotRight + 10}" y="${top + 15 + k * 16}" font-size="11" fill="${k === 0 && first === null ? COLORS.error : COLORS.text}">${esc(line)}</text>`);
    });
  }
  return out.join('\n');
}
