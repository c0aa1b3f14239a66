import fc from 'fast-check';
import { POOLS, taskUsageSchema, type TaskUsage, type UsageSegment } from '../../src/protocol';

export const HOUR = 3_600_000;

/** The instant of a local time in China Standard Time, e.g. `cst('2026-11-02T08:00')`. */
export const cst = (local: string): number => Date.parse(`${local}+08:00`);

/** A task usage with one task of job `jobId`, validated by the wire schema (defaults filled in). */
export function usage(jobId: string, over: { tenant?: string; pool?: TaskUsage['pool']; billingClass?: TaskUsage['billingClass']; segments: Partial<UsageSegment>[] }): TaskUsage {
  const { segments, ...rest } = over;
  return taskUsageSchema.parse({
    jobId,
    attemptId: `${jobId}-a1`,
    taskIndex: 0,
    tenant: 'beijing',
    pool: 'general',
    nodeId: 'n1',
    ...rest,
    segments: segments.map((s) => ({ hourStartMs: 0, runMs: HOUR, cpuMilliSeconds: 0, memMiBSeconds: 0, energyMilliWh: 0, greenMilliWh: 0, ...s })),
  });
}

/** Random usages of a few tenants, jobs and GPU models over about three days around the start of November 2026 (local time). */
export const usagesArb: fc.Arbitrary<TaskUsage[]> = fc.array(
  fc
    .record({
      tenant: fc.constantFrom('beijing', 'shanghai-meteo', 'x,"y"'),
      pool: fc.constantFrom(...POOLS),
      job: fc.integer({ min: 0, max: 6 }),
      billingClass: fc.constantFrom('standard' as const, 'public-interest' as const),
      segments: fc.array(
        fc.record({
          hourStartMs: fc.integer({ min: -30, max: 40 }).map((h) => cst('2026-11-01T00:00') + h * HOUR),
          cpuMilliSeconds: fc.nat(64 * 1000 * 3600),
          gpuMilliSeconds: fc.dictionary(fc.constantFrom('A800', 'H800', '910B', 'T4'), fc.nat(8 * 1000 * 3600), { maxKeys: 2 }),
          memMiBSeconds: fc.nat(512 * 1024 * 3600),
          energyMilliWh: fc.nat(10_000_000),
          carbonMg: fc.nat(5_000_000),
        }),
        { maxLength: 6 },
      ),
    })
    .map(({ tenant, pool, job, billingClass, segments }) =>
      // A job belongs to one tenant and pool, as in the scheduler.
      usage(`${tenant}/${pool}/${job}`, { tenant, pool, billingClass, segments: segments.map((s) => ({ ...s, greenMilliWh: Math.floor(s.energyMilliWh / 3) })) }),
    ),
  { maxLength: 12 },
);
