import { expect, test } from 'vitest';
import { loadSchedulerConfig } from '../../scheduler/config';
import { loadAgentConfig } from '../../agents/config';

test('defaults need no environment', () => {
  const c = loadSchedulerConfig({});
  expect(c).toMatchObject({ natsUrl: 'nats://127.0.0.1:4222', httpHost: '127.0.0.1', httpPort: 8080, suspectAfterMs: 3000, downAfterMs: 10_000, logPretty: false });
  expect(c.priorityClasses).toEqual({ urgent: 1000, normal: 500, batch: 100, 'best-effort': 0 });
});

test('variables are read and coerced', () => {
  const c = loadSchedulerConfig({ QY_HTTP_PORT: '9090', QY_LOG_PRETTY: 'yes', QY_PRIORITY_CLASSES: '{"gold":9,"tin":1}' });
  expect(c.httpPort).toBe(9090);
  expect(c.logPretty).toBe(true);
  expect(c.priorityClasses).toEqual({ gold: 9, tin: 1 });
});

test('every bad variable is named in one error', () => {
  expect(() => loadSchedulerConfig({ QY_HTTP_PORT: 'eighty', QY_LOG_LEVEL: 'loud', QY_PRIORITY_CLASSES: '[1]' })).toThrow(
    /QY_HTTP_PORT: .*; QY_LOG_LEVEL: .*; QY_PRIORITY_CLASSES: must be a JSON object/,
  );
  expect(() => loadSchedulerConfig({ QY_SUSPECT_AFTER_MS: '5000', QY_DOWN_AFTER_MS: '4000' })).toThrow('QY_DOWN_AFTER_MS must not be smaller than QY_SUSPECT_AFTER_MS');
});

test('lease timings that would let a deposed leader overlap its successor are refused', () => {
  expect(loadSchedulerConfig({}).leaseDurationMs).toBe(15_000);
  // The renew deadline plus a retry period must end before the lease does.
  expect(() => loadSchedulerConfig({ QY_LEASE_DURATION_MS: '10000', QY_LEASE_RENEW_DEADLINE_MS: '9000', QY_LEASE_RETRY_MS: '2000' })).toThrow(/QY_LEASE_DURATION_MS: lease timings/);
  expect(() => loadSchedulerConfig({ QY_LEASE_RETRY_MS: '20000' })).toThrow(/retry period < renew deadline/);
  // A step of milliseconds would give two-day forecasts millions of points.
  expect(() => loadSchedulerConfig({ QY_GREEN_STEP_MS: '200' })).toThrow(/QY_GREEN_STEP_MS: must be at least 60000/);
});

test('the agent configuration names bad variables too', () => {
  expect(loadAgentConfig({ QY_SIMULATE: '12' }).simulate).toBe(12);
  expect(() => loadAgentConfig({ QY_GREEN_SHARE: '1.5' })).toThrow(/QY_GREEN_SHARE: Too big/);
});

test('the archive database is a postgres URL, and off when unset', () => {
  expect(loadSchedulerConfig({}).databaseUrl).toBeUndefined();
  expect(loadSchedulerConfig({ QY_DATABASE_URL: 'postgres://qy:pw@db:5432/qingyang' }).databaseUrl).toBe('postgres://qy:pw@db:5432/qingyang');
  expect(() => loadSchedulerConfig({ QY_DATABASE_URL: 'mysql://db/qingyang' })).toThrow(/QY_DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/);
});

test("the nodes' mean time between failures for deferral plans: unset by default, a positive number of hours", () => {
  expect(loadSchedulerConfig({}).greenNodeMtbfHours).toBeUndefined();
  expect(loadSchedulerConfig({ QY_GREEN_NODE_MTBF_HOURS: '100' }).greenNodeMtbfHours).toBe(100);
  expect(() => loadSchedulerConfig({ QY_GREEN_NODE_MTBF_HOURS: '0' })).toThrow(/QY_GREEN_NODE_MTBF_HOURS/);
});

test('the deferral share: one for every pool, or per pool; a bad one is named', () => {
  expect(loadSchedulerConfig({}).greenDeferralShare).toEqual({ default: 0.2, pools: { intelligent: 0 } });
  expect(loadSchedulerConfig({ QY_GREEN_DEFERRAL_SHARE: '0.1' }).greenDeferralShare).toEqual({ default: 0.1, pools: {} });
  expect(loadSchedulerConfig({ QY_GREEN_DEFERRAL_SHARE: '0.2,intelligent=0' }).greenDeferralShare).toEqual({ default: 0.2, pools: { intelligent: 0 } });
  expect(() => loadSchedulerConfig({ QY_GREEN_DEFERRAL_SHARE: 'gpu=0' })).toThrow(/QY_GREEN_DEFERRAL_SHARE: "gpu=0": unknown pool gpu/);
});

test("a headers file for the carbon feeds goes with a feed's URL", () => {
  expect(() => loadSchedulerConfig({ QY_CARBON_HEADERS_FILE: '/etc/qy/carbon-headers' })).toThrow('QY_CARBON_HEADERS_FILE names the headers of QY_CARBON_URL and QY_CARBON_FORECAST_URL, neither of which is set');
  expect(loadSchedulerConfig({ QY_CARBON_HEADERS_FILE: '/etc/qy/carbon-headers', QY_CARBON_URL: 'https://api.electricitymaps.com/v3/carbon-intensity/latest?zone=DE' }).carbonHeadersFile).toBe('/etc/qy/carbon-headers');
  expect(loadSchedulerConfig({ QY_CARBON_HEADERS_FILE: '/etc/qy/carbon-headers', QY_CARBON_FORECAST_URL: 'https://api.electricitymaps.com/v3/carbon-intensity/forecast?zone=DE' }).carbonForecastPollMs).toBe(1_800_000);
});
