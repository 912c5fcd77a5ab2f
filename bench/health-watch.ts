/**
 * An observer of Consul's health view: one blocking query loop on
 * `/v1/health/service/<svc>?passing` that timestamps every change of the passing primaries
 * and replicas. It is the benchmark's clock for "Consul changed" (the moment a client that
 * follows Consul could have known); its requests are not counted as any client's load.
 * @module
 */
import { request } from 'node:http';
import type { ClientRequest } from 'node:http';

/** The health view at one moment. */
export interface HealthSample {
  /** When the answer arrived (ms since the epoch). */
  readonly at: number;
  /** `X-Consul-Index` of the answer. */
  readonly index: number;
  /** Members listed as passing primaries (tag `primary` or `master`), sorted. */
  readonly primaries: readonly string[];
  /** Members listed as passing replicas, sorted. */
  readonly replicas: readonly string[];
}

interface Entry {
  Service?: { ID?: string; Tags?: string[] };
}

/** Follows the health view until stopped. */
export class HealthWatch {
  /** Every distinct view seen, oldest first (the first one is the view at start). */
  readonly samples: HealthSample[] = [];
  readonly #host: string;
  readonly #port: number;
  readonly #service: string;
  readonly #scope: string;
  #req: ClientRequest | undefined;
  #running = true;
  readonly #loop: Promise<void>;

  /**
   * @param consul `host` and `port` of the Consul (double)
   * @param service service name
   * @param scope prefix of the service IDs (`<scope>/<member>`)
   */
  constructor(consul: { host: string; port: number }, service: string, scope = service) {
    this.#host = consul.host;
    this.#port = consul.port;
    this.#service = service;
    this.#scope = scope;
    this.#loop = this.#run();
  }

  /** The first sample at or after `since` satisfying `predicate`. */
  firstAfter(since: number, predicate: (s: HealthSample) => boolean): HealthSample | undefined {
    return this.samples.find((s) => s.at >= since && predicate(s));
  }

  /** Stops the loop (aborting the held request). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#req?.destroy();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let index = 0;
    while (this.#running) {
      try {
        const { status, body, index: next } = await this.#get(index);
        if (!this.#running) break;
        if (status !== 200) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        index = next < index ? 0 : next;
        const sample = this.#parse(body, next);
        const last = this.samples[this.samples.length - 1];
        if (!last || last.primaries.join() !== sample.primaries.join() || last.replicas.join() !== sample.replicas.join()) this.samples.push(sample);
      } catch {
        if (!this.#running) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  #parse(body: string, index: number): HealthSample {
    const entries = JSON.parse(body) as Entry[];
    const primaries: string[] = [];
    const replicas: string[] = [];
    for (const e of entries) {
      const id = e.Service?.ID ?? '';
      const name = id.startsWith(`${this.#scope}/`) ? id.slice(this.#scope.length + 1) : id;
      const tags = e.Service?.Tags ?? [];
      if (tags.includes('primary') || tags.includes('master')) primaries.push(name);
      else if (tags.includes('replica')) replicas.push(name);
    }
    return { at: Date.now(), index, primaries: primaries.sort(), replicas: replicas.sort() };
  }

  #get(index: number): Promise<{ status: number; body: string; index: number }> {
    return new Promise((resolve, reject) => {
      const path = `/v1/health/service/${encodeURIComponent(this.#service)}?passing&index=${index}&wait=60s`;
      const req = request({ host: this.#host, port: this.#port, path, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), index: Number(res.headers['x-consul-index'] ?? 0) }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
      this.#req = req;
    });
  }
}
