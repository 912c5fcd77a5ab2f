/**
 * Runs the agent's checks the way a Consul agent does: HTTP and TCP checks are actively
 * probed on their interval (first probe after a random stagger within the interval), TTL
 * checks go critical when not updated in time, and a service whose check stays critical for
 * `DeregisterCriticalServiceAfter` is deregistered.
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { CheckStatus, ConsulState } from './state.js';

/** What the runner needs to know about one check. */
export interface CheckSpec {
  /** `manual` checks are only set by hand (the test API); nothing runs for them. */
  kind: 'http' | 'tcp' | 'ttl' | 'manual';
  /** HTTP check target URL, as registered. */
  http: string;
  method: string;
  header: Record<string, string[]>;
  body: string;
  /** TCP check target `host:port`. */
  tcp: string;
  intervalMs: number;
  timeoutMs: number;
  ttlMs: number;
  /** 0 = never. */
  deregisterCriticalAfterMs: number;
  tlsServerName: string;
  tlsSkipVerify: boolean;
  successBeforePassing: number;
  failuresBeforeCritical: number;
}

/** Options of {@link CheckRunner}. */
export interface CheckRunnerOptions {
  /** The agent's node: every check runs there. */
  node: string;
  /** Whether the first probe waits a random time within the interval (Consul does). */
  stagger: boolean;
  /** Called to deregister a service whose check stayed critical too long. */
  deregisterService: (serviceId: string) => void;
}

interface Running {
  readonly checkId: string;
  readonly serviceId: string;
  readonly spec: CheckSpec;
  timer: NodeJS.Timeout | undefined;
  reapTimer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
  stopped: boolean;
  successes: number;
  failures: number;
}

/** Consul keeps the last 4 KiB of a check's output. */
const OUTPUT_MAX = 4096;

function goOp(method: string): string {
  return method.charAt(0).toUpperCase() + method.slice(1).toLowerCase();
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Manages the running checks of the agent. */
export class CheckRunner {
  readonly #state: ConsulState;
  readonly #options: CheckRunnerOptions;
  readonly #running = new Map<string, Running>();
  readonly #inflight = new Set<Promise<void>>();
  #stopped = false;

  /** @param state the store results are written to; @param options see {@link CheckRunnerOptions} */
  constructor(state: ConsulState, options: CheckRunnerOptions) {
    this.#state = state;
    this.#options = options;
  }

  /** Starts (or restarts) the runner of a check already present in the state. */
  start(checkId: string, serviceId: string, spec: CheckSpec): void {
    this.stop(checkId);
    if (this.#stopped) return;
    const r: Running = { checkId, serviceId, spec, timer: undefined, reapTimer: undefined, abort: undefined, stopped: false, successes: 0, failures: 0 };
    this.#running.set(checkId, r);
    if (spec.kind === 'http' || spec.kind === 'tcp') {
      const first = this.#options.stagger ? Math.floor(Math.random() * spec.intervalMs) : 0;
      this.#schedule(r, first);
    } else if (spec.kind === 'ttl') {
      this.#armTtl(r);
    }
    this.#syncReaper(r);
  }

  /** Stops the runner of a check (no-op when none). */
  stop(checkId: string): void {
    const r = this.#running.get(checkId);
    if (!r) return;
    r.stopped = true;
    if (r.timer) clearTimeout(r.timer);
    if (r.reapTimer) clearTimeout(r.reapTimer);
    r.abort?.abort();
    this.#running.delete(checkId);
  }

  /** Whether a runner exists for the check. */
  has(checkId: string): boolean {
    return this.#running.has(checkId);
  }

  /** The kind of a running check, if any. */
  kindOf(checkId: string): CheckSpec['kind'] | undefined {
    return this.#running.get(checkId)?.spec.kind;
  }

  /**
   * Records a status set from outside a probe (TTL update, the test API): resets a TTL
   * check's timer and (re)arms the critical-deregistration timer.
   */
  update(checkId: string, status: CheckStatus, output: string): void {
    this.#state.updateCheckStatus(this.#options.node, checkId, status, output);
    const r = this.#running.get(checkId);
    if (!r) return;
    if (r.spec.kind === 'ttl') this.#armTtl(r);
    this.#syncReaper(r);
  }

  /** Re-evaluates the critical-deregistration timer after a status set by hand. */
  touch(checkId: string): void {
    const r = this.#running.get(checkId);
    if (r) this.#syncReaper(r);
  }

  /** Stops everything and waits for probes in flight to settle. */
  async stopAll(): Promise<void> {
    this.#stopped = true;
    for (const id of [...this.#running.keys()]) this.stop(id);
    await Promise.allSettled([...this.#inflight]);
  }

  #armTtl(r: Running): void {
    if (r.timer) clearTimeout(r.timer);
    r.timer = setTimeout(() => {
      r.timer = undefined;
      if (r.stopped) return;
      this.#state.updateCheckStatus(this.#options.node, r.checkId, 'critical', 'TTL expired');
      this.#syncReaper(r);
    }, r.spec.ttlMs);
    r.timer.unref();
  }

  #syncReaper(r: Running): void {
    if (r.spec.deregisterCriticalAfterMs <= 0 || r.serviceId === '' || r.stopped) return;
    const status = this.#state.findCheck(this.#options.node, r.checkId)?.status;
    if (status === 'critical') {
      if (r.reapTimer) return;
      r.reapTimer = setTimeout(() => {
        r.reapTimer = undefined;
        if (r.stopped) return;
        if (this.#state.findCheck(this.#options.node, r.checkId)?.status === 'critical') this.#options.deregisterService(r.serviceId);
      }, r.spec.deregisterCriticalAfterMs);
      r.reapTimer.unref();
    } else if (r.reapTimer) {
      clearTimeout(r.reapTimer);
      r.reapTimer = undefined;
    }
  }

  #schedule(r: Running, delayMs: number): void {
    r.timer = setTimeout(() => {
      r.timer = undefined;
      const p = this.#runOnce(r);
      this.#inflight.add(p);
      void p.finally(() => this.#inflight.delete(p));
    }, delayMs);
    r.timer.unref();
  }

  async #runOnce(r: Running): Promise<void> {
    if (r.stopped) return;
    const abort = new AbortController();
    r.abort = abort;
    let result: { status: CheckStatus; output: string };
    try {
      result = r.spec.kind === 'http' ? await this.#probeHttp(r.spec, abort.signal) : await this.#probeTcp(r.spec, abort.signal);
    } catch (err) {
      result = { status: 'critical', output: err instanceof Error ? err.message : String(err) };
    }
    r.abort = undefined;
    if (r.stopped) return;
    this.#apply(r, result.status, result.output);
    this.#schedule(r, r.spec.intervalMs);
  }

  #apply(r: Running, status: CheckStatus, output: string): void {
    const current = this.#state.findCheck(this.#options.node, r.checkId);
    if (!current) return;
    let effective = status;
    if (status === 'critical') {
      r.successes = 0;
      r.failures += 1;
      if (r.failures < r.spec.failuresBeforeCritical) effective = current.status;
    } else {
      r.failures = 0;
      r.successes += 1;
      if (r.successes < r.spec.successBeforePassing) effective = current.status;
    }
    this.#state.updateCheckStatus(this.#options.node, r.checkId, effective, output);
    this.#syncReaper(r);
  }

  #probeHttp(spec: CheckSpec, signal: AbortSignal): Promise<{ status: CheckStatus; output: string }> {
    return new Promise((resolve) => {
      const method = spec.method || 'GET';
      const target = spec.http;
      const fail = (detail: string): void => resolve({ status: 'critical', output: `${goOp(method)} ${JSON.stringify(target)}: ${detail}` });
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        fail('unsupported protocol scheme ""');
        return;
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        fail(`unsupported protocol scheme "${url.protocol.replace(/:$/, '')}"`);
        return;
      }
      const headers: Record<string, string | string[]> = { 'User-Agent': 'Consul Health Check', Accept: 'text/plain, text/*, */*' };
      for (const [k, v] of Object.entries(spec.header)) headers[k] = v;
      let timedOut = false;
      const hostPort = `${url.hostname.replace(/^\[|\]$/g, '')}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
      const onAbort = (): void => {
        req.destroy(new Error('aborted'));
      };
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy(new Error('timeout'));
      }, spec.timeoutMs);
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const options: https.RequestOptions = { method, headers, agent: false };
      if (url.protocol === 'https:') {
        if (spec.tlsServerName) options.servername = spec.tlsServerName;
        options.rejectUnauthorized = !spec.tlsSkipVerify;
      }
      const req = (url.protocol === 'https:' ? https : http).request(url, options, (res) => {
        let tail = Buffer.alloc(0);
        res.on('data', (chunk: Buffer) => {
          tail = Buffer.concat([tail, chunk]);
          if (tail.length > OUTPUT_MAX) tail = tail.subarray(tail.length - OUTPUT_MAX);
        });
        res.on('error', () => undefined);
        res.on('end', () => {
          done();
          const code = res.statusCode ?? 0;
          const output = `HTTP ${method} ${target}: ${code} ${res.statusMessage ?? ''} Output: ${tail.toString('utf8')}`;
          const status: CheckStatus = code >= 200 && code <= 299 ? 'passing' : code === 429 ? 'warning' : 'critical';
          resolve({ status, output });
        });
        res.on('close', () => {
          if (!res.complete) {
            done();
            fail(timedOut ? 'context deadline exceeded (Client.Timeout exceeded while reading body)' : 'unexpected EOF');
          }
        });
      });
      req.on('error', (err) => {
        done();
        if (timedOut) fail('context deadline exceeded (Client.Timeout exceeded while awaiting headers)');
        else if (errorCode(err) === 'ECONNREFUSED') fail(`dial tcp ${hostPort}: connect: connection refused`);
        else if (errorCode(err) === 'ECONNRESET') fail('EOF');
        else fail(err.message);
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      req.end(spec.body === '' ? undefined : spec.body);
    });
  }

  #probeTcp(spec: CheckSpec, signal: AbortSignal): Promise<{ status: CheckStatus; output: string }> {
    return new Promise((resolve) => {
      const idx = spec.tcp.lastIndexOf(':');
      const host = spec.tcp.slice(0, idx).replace(/^\[|\]$/g, '');
      const port = Number(spec.tcp.slice(idx + 1));
      if (idx < 0 || !Number.isInteger(port) || port < 0 || port > 65535 || spec.tcp.slice(idx + 1) === '') {
        resolve({ status: 'critical', output: `dial tcp: address ${spec.tcp}: ${idx < 0 ? 'missing port in address' : 'invalid port'}` });
        return;
      }
      const socket = net.connect({ host, port });
      const finish = (status: CheckStatus, output: string): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve({ status, output });
      };
      const onAbort = (): void => finish('critical', 'aborted');
      const timer = setTimeout(() => finish('critical', `dial tcp ${spec.tcp}: i/o timeout`), spec.timeoutMs);
      timer.unref();
      socket.once('connect', () => finish('passing', `TCP connect ${spec.tcp}: Success`));
      socket.once('error', (err) => {
        const detail = errorCode(err) === 'ECONNREFUSED' ? 'connect: connection refused' : err.message;
        finish('critical', `dial tcp ${spec.tcp}: ${detail}`);
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
