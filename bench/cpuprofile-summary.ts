/**
 * Summarizes a V8 `.cpuprofile` (from `node --cpu-prof`): self time by function and by
 * origin (pg-consul's `lib/`, `pg`, `pg-pool`, `pg-protocol`, other packages, Node internals,
 * GC, idle), and inclusive time of pg-consul's own functions.
 *
 * `npx tsx bench/cpuprofile-summary.ts <file.cpuprofile> [top N]`
 * @module
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a frame's code comes from. */
export function originOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(program)') return 'program';
  if (url.includes('/node_modules/pg-pool/')) return 'pg-pool';
  if (url.includes('/node_modules/pg-protocol/')) return 'pg-protocol';
  if (url.includes('/node_modules/pg/')) return 'pg';
  if (url.includes('/node_modules/')) return `pkg:${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? '?'}`;
  if (url.includes('/lib/testing/')) return 'lib/testing';
  if (url.includes('/lib/')) return 'pg-consul lib';
  if (url.includes('/bench/')) return 'bench';
  if (url.startsWith('node:') || url === '') return 'node/native';
  return 'other';
}

/** Self and inclusive time per function and self time per origin, in ms. */
export function summarize(profile: CpuProfile): {
  totalMillis: number;
  byOrigin: [string, number][];
  bySelf: [string, number][];
  libInclusive: [string, number][];
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const label = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|lib|bench)\//, '$1/')}:${f.lineNumber + 1}`;
  const byOrigin = new Map<string, number>();
  const bySelf = new Map<string, number>();
  const libInclusive = new Map<string, number>();
  let total = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    total += ms;
    const o = originOf(node.callFrame);
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + ms);
    bySelf.set(label(node.callFrame), (bySelf.get(label(node.callFrame)) ?? 0) + ms);
    // Inclusive time of pg-consul functions: count each lib frame once per sample stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (originOf(f) !== 'pg-consul lib') continue;
      const l = label(f);
      if (seen.has(l)) continue;
      seen.add(l);
      libInclusive.set(l, (libInclusive.get(l) ?? 0) + ms);
    }
  }
  const sorted = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalMillis: total, byOrigin: sorted(byOrigin), bySelf: sorted(bySelf), libInclusive: sorted(libInclusive) };
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const [file, topArg = '25'] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: cpuprofile-summary.ts <file.cpuprofile> [top N]');
  const s = summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const top = Number(topArg);
  const pct = (ms: number): string => `${((100 * ms) / s.totalMillis).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(6)} ms`;
  console.log(`total sampled ${s.totalMillis.toFixed(0)} ms\n\nself time by origin:`);
  for (const [k, v] of s.byOrigin) console.log(`  ${pct(v)}  ${k}`);
  console.log(`\ntop ${top} functions by self time:`);
  for (const [k, v] of s.bySelf.slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
  console.log(`\npg-consul lib functions, inclusive time:`);
  for (const [k, v] of s.libInclusive.slice(0, top)) console.log(`  ${pct(v)}  ${k}`);
}
