/**
 * Failover drills on a {@link PatroniLab}: a planned switchover or a crash of the leader's
 * PostgreSQL, with the moments that matter recorded (leader key moved, new leader the sole
 * passing primary in Consul), and the write stall a {@link Workload} saw through it.
 *
 * @example
 * ```ts
 * const t = await crashDrill(lab);
 * const stall = writeStall(load, t);
 * console.log(`${t.from} → ${t.to}: registered +${t.registeredAt - t.startedAt} ms, stall ${stall.millis} ms`);
 * ```
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PatroniLab } from './patroni-lab.js';
import type { Workload } from './workload.js';

/** What a drill measured; times are epoch ms. */
export interface DrillTiming {
  /** `switchover` or `crash` (kill -9 of the leader's postmaster). */
  readonly kind: 'switchover' | 'crash';
  /** Leader before. */
  readonly from: string;
  /** Leader after. */
  readonly to: string;
  /** When the drill began (switchover requested / postmaster killed). */
  readonly startedAt: number;
  /** When Consul KV's leader key first named `to`. */
  readonly leaderKeyMovedAt: number;
  /** When `to` was the sole passing primary in Consul's health view (Patroni's part done). */
  readonly registeredAt: number;
}

/** The write stall a workload saw through a drill. */
export interface WriteStall {
  /** Last acknowledged write on the old leader before the new one took writes (ms), if any. */
  readonly lastOldAckAt: number | undefined;
  /** First acknowledged write on the new leader (ms), if any. */
  readonly firstNewAckAt: number | undefined;
  /** Longest time with no acknowledged write between `startedAt` and the first ack on the new leader. */
  readonly millis: number;
}

/**
 * Planned switchover (Patroni REST `POST /switchover`, as `patronictl switchover --force`).
 * @param lab the lab
 * @param candidate the member to hand over to (default: a passing replica)
 */
export async function switchoverDrill(lab: PatroniLab, candidate?: string): Promise<DrillTiming> {
  const t = await lab.switchover(candidate === undefined ? {} : { candidate });
  return { kind: 'switchover', ...t };
}

/**
 * `kill -9` of the leader's postmaster; Patroni (primary_start_timeout 0) fails over.
 * Resolves when a new leader is the sole passing primary in Consul.
 * @param lab the lab
 * @param timeoutMillis give up after this long (default 60 s)
 */
export async function crashDrill(lab: PatroniLab, timeoutMillis = 60_000): Promise<DrillTiming> {
  await lab.waitForSyncStandby();
  const from = await lab.leader();
  const startedAt = Date.now();
  await lab.killPostgres(from);
  let leaderKeyMovedAt = 0;
  let to = '';
  const deadline = startedAt + timeoutMillis;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no new leader registered within ${timeoutMillis} ms of killing ${from}'s postmaster`);
    if (leaderKeyMovedAt === 0) {
      const leader = await lab.leader().catch(() => undefined);
      if (leader !== undefined && leader !== from) {
        leaderKeyMovedAt = Date.now();
        to = leader;
      }
    }
    if (leaderKeyMovedAt !== 0) {
      const h = await lab.health();
      if (h.primaries.length === 1 && h.primaries[0] === to) {
        return { kind: 'crash', from, to, startedAt, leaderKeyMovedAt, registeredAt: Date.now() };
      }
    }
    await sleep(20);
  }
}

/**
 * Computes the write stall of `load` through a drill: the longest gap between acknowledged
 * writes from the drill's start until the first write acknowledged by the new leader.
 * @param load the workload that ran through the drill
 * @param t the drill's timing
 * @param ports PostgreSQL port of each member, by name
 */
export function writeStall(load: Workload, t: DrillTiming, ports: Readonly<Record<string, number>>): WriteStall {
  const newPort = ports[t.to];
  const acks = load.writes.filter((w) => !w.error && w.endedAt >= t.startedAt - 1000).sort((a, b) => a.endedAt - b.endedAt);
  const firstNew = acks.find((w) => w.port === newPort && w.endedAt >= t.startedAt);
  const lastOld = [...acks].reverse().find((w) => w.port !== newPort && (firstNew === undefined || w.endedAt <= firstNew.endedAt));
  let millis = 0;
  let prev = t.startedAt;
  for (const w of acks) {
    if (w.endedAt < t.startedAt) continue;
    if (firstNew !== undefined && w.endedAt > firstNew.endedAt) break;
    millis = Math.max(millis, w.endedAt - prev);
    prev = w.endedAt;
  }
  if (firstNew === undefined) millis = Date.now() - prev;
  return { lastOldAckAt: lastOld?.endedAt, firstNewAckAt: firstNew?.endedAt, millis };
}
