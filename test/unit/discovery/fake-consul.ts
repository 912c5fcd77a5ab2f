/**
 * Test helpers for the discovery sources: a scriptable stand-in for `consulGet` and a
 * listener that records everything.
 */
import assert from 'node:assert/strict';
import { DiscoveryError } from '../../../lib/errors.js';
import type { ConsulConfig } from '../../../lib/discovery/consul-config.js';
import type { ConsulGetOptions, ConsulQuery, ConsulResponse } from '../../../lib/discovery/consul-http.js';
import type { DiscoveryListener } from '../../../lib/discovery/discovery-source.js';
import type { TopologyUpdate } from '../../../lib/topology/node.js';

/** A token that must never show up in logs or errors. */
export const TOKEN = 'c0ffee00-dead-beef-0000-5ecre7t0ken1';

/** A Consul connection carrying {@link TOKEN}. */
export const CONSUL: ConsulConfig = {
  scheme: 'http',
  host: '127.0.0.1',
  port: 8500,
  token: TOKEN,
  consistency: 'default',
  tls: { rejectUnauthorized: true },
};

/** One request the fake received. */
export interface Call {
  readonly path: string;
  readonly query: ConsulQuery;
  readonly opts: ConsulGetOptions;
  readonly at: number;
  readonly resolve: (res: ConsulResponse) => void;
  readonly reject: (err: unknown) => void;
}

/** A scriptable stand-in for consulGet: records calls, answers when told, honours the signal. */
export class FakeConsul {
  readonly calls: Call[] = [];
  /** When set, called for every new request (e.g. to answer at once). */
  onCall: ((call: Call) => void) | undefined;

  readonly transport = (_config: ConsulConfig, path: string, query: ConsulQuery, opts: ConsulGetOptions): Promise<ConsulResponse> =>
    new Promise<ConsulResponse>((resolve, reject) => {
      opts.signal.addEventListener('abort', () => reject(new DiscoveryError('aborted (fake)')), { once: true });
      const call: Call = { path, query, opts, at: Date.now(), resolve, reject };
      this.calls.push(call);
      this.onCall?.(call);
    });

  /** The latest request. */
  get last(): Call {
    const call = this.calls.at(-1);
    assert.ok(call, 'no request was made');
    return call;
  }
}

/** A 200 answer with `X-Consul-Index: index` (no header when undefined). */
export function answer(index: string | undefined, body: unknown, status = 200): ConsulResponse {
  return { status, headers: index === undefined ? {} : { 'x-consul-index': index }, body };
}

/** Records every callback. */
export class RecordingListener implements DiscoveryListener {
  readonly updates: TopologyUpdate[] = [];
  readonly errors: Array<{ error: Error; attempt: number; retryInMillis: number }> = [];
  readonly skipped: string[] = [];
  onUpdate(update: TopologyUpdate): void {
    this.updates.push(update);
  }
  onError(error: Error, info: { readonly attempt: number; readonly retryInMillis: number }): void {
    this.errors.push({ error, ...info });
  }
  onSkippedEntry(reason: string): void {
    this.skipped.push(reason);
  }
  /** The latest update. */
  get last(): TopologyUpdate {
    const update = this.updates.at(-1);
    assert.ok(update, 'no update was reported');
    return update;
  }
}

/** A health entry (`/v1/health/service` shape). */
export function healthEntry(name: string, address: string, tags: string[], port = 5432): unknown {
  return { Node: { Node: 'agent', Address: '10.9.9.9' }, Service: { ID: `pglab/${name}`, Service: 'pglab', Address: address, Port: port, Tags: tags, ModifyIndex: 1 } };
}

/** Shared loop settings for unit tests (rate limit 100 ms, backoff 1 s → 10 s). */
export const LOOP = {
  consul: CONSUL,
  waitSeconds: 30,
  requestTimeoutMillis: 2_000,
  minIntervalMillis: 100,
  backoff: { initialMillis: 1_000, maxMillis: 10_000 },
} as const;

/** A KV entry under `service/pglab/`, as Consul returns it (value base64). */
export function kv(key: string, value: string | Record<string, unknown> | null, createIndex = 10, modifyIndex = createIndex): Record<string, unknown> {
  const text = value === null ? null : typeof value === 'string' ? value : JSON.stringify(value);
  return {
    LockIndex: 1,
    Key: `service/pglab/${key}`,
    Flags: 0,
    Value: text === null ? null : Buffer.from(text, 'utf8').toString('base64'),
    CreateIndex: createIndex,
    ModifyIndex: modifyIndex,
  };
}

/** A `members/<name>` entry as Patroni 3.0.2 writes it. */
export function member(name: string, port: number, role: string, state = 'running', extra: Record<string, unknown> = {}, createIndex = 20): Record<string, unknown> {
  return kv(
    `members/${name}`,
    {
      conn_url: `postgres://127.0.0.1:${port}/postgres`,
      api_url: `http://127.0.0.1:${port + 1000}/patroni`,
      state,
      role,
      version: '3.0.2',
      xlog_location: 67108864,
      timeline: 1,
      ...extra,
    },
    createIndex,
  );
}
