import diagnostics from 'node:diagnostics_channel';
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import { Pool, QUERY_CHANNEL, RETRY_CHANNEL, TOPOLOGY_CHANNEL } from 'pg-consul';
import type { QueryChannelMessage, RetryChannelMessage } from 'pg-consul';

// OpenTelemetry metrics from pg-consul's events and diagnostics channels. A real app sets up
// its MeterProvider with an OTLP or Prometheus exporter; here an in-memory exporter and a
// forced flush print what would be exported. Configured from the environment like
// quick-start.ts (PGCONSUL_SERVICE, CONSUL_HTTP_ADDR, PGUSER, PGPASSWORD, PGDATABASE).
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
const provider = new MeterProvider({ readers: [reader] });
metrics.setGlobalMeterProvider(provider);
const meter = metrics.getMeter('pg-consul');

const failovers = meter.createCounter('pgconsul.failovers', { description: 'writes moved to a new confirmed primary' });
const failoverDuration = meter.createHistogram('pgconsul.failover.duration', { unit: 'ms', description: 'first sign of trouble → new primary confirmed' });
const retries = meter.createCounter('pgconsul.retries', { description: 'attempts retried, by path and outcome' });
const queries = meter.createCounter('pgconsul.queries', { description: 'statement attempts, by the role of the node they were routed to' });
let topologyChangedAt = Date.now();
meter
  .createObservableGauge('pgconsul.topology.age', { unit: 's', description: 'seconds since the last routing change' })
  .addCallback((result) => result.observe((Date.now() - topologyChangedAt) / 1000));

const pool = new Pool();

// Pool events: per Pool.
pool.on('failover', (e) => {
  failovers.add(1);
  failoverDuration.record(e.durationMillis);
});

// Diagnostics channels: every Pool of the process; `pg-consul:query` costs nothing unless subscribed.
const onQuery = (m: unknown): void => {
  const q = m as QueryChannelMessage;
  queries.add(1, { role: q.role, intent: q.intent });
};
const onRetry = (m: unknown): void => {
  const r = m as RetryChannelMessage;
  retries.add(1, { role: r.role, outcome: r.outcome });
};
const onTopology = (): void => {
  topologyChangedAt = Date.now();
};
diagnostics.subscribe(QUERY_CHANNEL, onQuery);
diagnostics.subscribe(RETRY_CHANNEL, onRetry);
diagnostics.subscribe(TOPOLOGY_CHANNEL, onTopology);

const rounds = Number(process.env.EXAMPLE_ROUNDS ?? 10);
for (let i = 0; i < rounds; i++) {
  await pool.query('SELECT 1'); // → the primary
  await pool.replica.query('SELECT 1'); // → a replica
}
failovers.add(0); // so the counter is exported even when no failover happened

await reader.forceFlush();
for (const resourceMetrics of exporter.getMetrics()) {
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      for (const point of metric.dataPoints as DataPoint<number | Histogram>[]) {
        const attributes = Object.entries(point.attributes).map(([k, v]) => `${k}=${String(v)}`);
        const value = typeof point.value === 'number' ? point.value.toFixed(metric.descriptor.name.endsWith('.age') ? 3 : 0) : `count=${point.value.count} sum=${point.value.sum}`;
        console.log(`${metric.descriptor.name}${attributes.length > 0 ? `{${attributes.join(',')}}` : ''} ${value}`);
      }
    }
  }
}

diagnostics.unsubscribe(QUERY_CHANNEL, onQuery);
diagnostics.unsubscribe(RETRY_CHANNEL, onRetry);
diagnostics.unsubscribe(TOPOLOGY_CHANNEL, onTopology);
await pool.end();
await provider.shutdown();
