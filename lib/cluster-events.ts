/**
 * Where a Pool's events go: the Pool itself and its `primary` / `replica` views. An event is
 * only emitted on an emitter with a listener, so an `error` can never crash the process, and a
 * listener that throws is logged, never thrown back into pg-consul.
 * @module
 */
import type { EventEmitter } from 'node:events';
import { publishEvent } from './diagnostics.js';
import type { PoolEvents } from './events.js';
import type { Logger } from './log.js';
import type { NodePool } from './pooling/node-pool.js';

/** The emitters events are delivered to: the Pool facade and its two role views. */
export interface ClusterEmitters {
  readonly pool: EventEmitter;
  readonly primary: EventEmitter;
  readonly replica: EventEmitter;
}

/** The pg.Pool events node pools forward. */
export type PgEvent = 'connect' | 'acquire' | 'release' | 'remove' | 'error';

/** Delivers events to the Pool and its views (see the module's description). */
export class EventRouter {
  readonly #emitters: ClusterEmitters;
  readonly #log: Logger;

  /**
   * @param emitters the Pool and its views
   * @param log logger (already redacting)
   */
  constructor(emitters: ClusterEmitters, log: Logger) {
    this.#emitters = emitters;
    this.#log = log;
  }

  /**
   * Whether anyone listens for `event` on the view of `role` or on the Pool.
   * @param event the event
   * @param role the view
   */
  wants(event: 'acquire' | 'release', role: 'primary' | 'replica'): boolean {
    return this.#emitters[role].listenerCount(event) > 0 || this.#emitters.pool.listenerCount(event) > 0;
  }

  /**
   * Forwards a node pool's pg.Pool event to the view of its role and the Pool; an `error`
   * nobody listens to is logged instead.
   * @param event the event
   * @param args its arguments
   * @param from the node pool
   */
  forward(event: PgEvent, args: unknown[], from: NodePool): void {
    const delivered = this.emit(from.role, event, args);
    if (event === 'error' && !delivered) {
      this.#log('warn', 'idle client error (no error listener on the pool)', {
        node: from.address,
        error: (args[0] as Error | undefined)?.message,
      });
    }
  }

  /**
   * Emits on the Pool and on the view of `role` (when given), only where a listener exists,
   * and publishes `topology` / `failover` / `retry` on their diagnostics channels (see
   * lib/diagnostics.ts). Returns whether anyone listened (on the emitters).
   * @param role the view, or undefined for the Pool alone
   * @param event the event
   * @param args its arguments
   */
  emit<K extends keyof PoolEvents>(role: 'primary' | 'replica' | undefined, event: K, args: unknown[]): boolean {
    publishEvent(event, args[0]);
    let delivered = false;
    const targets = role ? [this.#emitters[role], this.#emitters.pool] : [this.#emitters.pool];
    for (const target of targets) {
      if (target.listenerCount(event) === 0) continue;
      delivered = true;
      try {
        target.emit(event, ...args);
      } catch (err) {
        this.#log('error', `a '${String(event)}' listener threw`, { error: String(err) });
      }
    }
    return delivered;
  }
}
