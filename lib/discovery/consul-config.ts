/**
 * A fully resolved, validated Consul connection: what `options.ts` produces from explicit
 * options and `CONSUL_*` environment variables, and what the Consul transport consumes.
 * Frozen; contains secrets (token, key, basic-auth password), so never log or serialise it —
 * use {@link describeConsulConfig} for messages.
 */
export interface ConsulConfig {
  /** `http` or `https`. For unix sockets, `http` with {@link ConsulConfig.socketPath} set. */
  readonly scheme: 'http' | 'https';
  /** Host name or IP (IPv6 without brackets). Ignored when `socketPath` is set. */
  readonly host: string;
  /** TCP port. Ignored when `socketPath` is set. */
  readonly port: number;
  /** Unix domain socket path (from `unix:///path`). */
  readonly socketPath?: string | undefined;
  /** ACL token sent as `X-Consul-Token`. Secret. */
  readonly token?: string | undefined;
  /** HTTP basic auth (`CONSUL_HTTP_AUTH`). Secret. */
  readonly basicAuth?: { readonly username: string; readonly password: string } | undefined;
  /** Datacenter (`?dc=`); undefined = the agent's own. */
  readonly datacenter?: string | undefined;
  /** `default`, `stale` (`?stale`, any server answers) or `consistent` (`?consistent`). */
  readonly consistency: 'default' | 'stale' | 'consistent';
  /** Consul Enterprise namespace (`?ns=`) / admin partition (`?partition=`). */
  readonly namespace?: string | undefined;
  /** Consul Enterprise admin partition. */
  readonly partition?: string | undefined;
  /** TLS settings, used when `scheme` is `https`. */
  readonly tls: {
    /** PEM CA bundle contents (from `CONSUL_CACERT` / `CONSUL_CAPATH`). */
    readonly ca?: string | undefined;
    /** PEM client certificate contents. */
    readonly cert?: string | undefined;
    /** PEM client key contents. Secret. */
    readonly key?: string | undefined;
    /** SNI / verification name (`CONSUL_TLS_SERVER_NAME`). */
    readonly servername?: string | undefined;
    /** false when `CONSUL_HTTP_SSL_VERIFY=false`. */
    readonly rejectUnauthorized: boolean;
  };
}

/** A secret-free one-line description of where Consul is, for logs and error messages. */
export function describeConsulConfig(c: ConsulConfig): string {
  const where = c.socketPath ? `unix://${c.socketPath}` : `${c.scheme}://${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`;
  return c.datacenter ? `${where} (dc ${c.datacenter})` : where;
}
