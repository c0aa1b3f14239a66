import { expect, test } from 'vitest';
import { parseCpuSeconds, realNodeSpec, schedCpuSeconds, StartTimes } from '../../loadtests/real';
import { percentileMs } from '../../loadtests/engine';
import { nodeSpecSchema } from '../../src/protocol';

test('CPU seconds from /proc/<pid>/stat: utime + stime, with children when asked, past a command name with spaces', () => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
  const stat = '4242 (node (qy) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 1000 30 20 0 11 0';
  expect(parseCpuSeconds(stat)).toBe(3);
  expect(parseCpuSeconds(stat, true)).toBe(13.3);
});

test('bench:real node files are valid node specs of the requested size', () => {
  const spec = nodeSpecSchema.parse(realNodeSpec(41, 8));
  expect(spec.id).toBe('real-042');
  expect(spec.capacity.cpuMillis).toBe(8000);
  expect(spec.pool).toBe('general');
});

test('schedCpuSeconds counts a process’s run time to the nanosecond, and 0 for a process that is gone', () => {
  const before = schedCpuSeconds(process.pid);
  const usage0 = process.cpuUsage();
  let x = 0;
  while (process.cpuUsage(usage0).user < 50_000) x += Math.sqrt(x + 1); // 50 ms of CPU, however long it takes
  const spent = (process.cpuUsage(usage0).user + process.cpuUsage(usage0).system) / 1e6;
  const counted = schedCpuSeconds(process.pid) - before;
  expect(x).toBeGreaterThan(0);
  expect(counted).toBeGreaterThan(spent * 0.5);
  expect(schedCpuSeconds(2 ** 22 + 12345)).toBe(0);
});

test('bench:real start latencies: a report that overtakes its 202 counts, the first start is kept, late starts are named by node', () => {
  const ms = (n: number) => BigInt(n) * 1_000_000n;
  const t = new StartTimes();
  // j1: assigned 10 ms and running 30 ms after it was sent, both seen before its 202 named it.
  t.assigned('j1', ms(10));
  t.ran('j1', ms(30), 'n1');
  t.sent('j1', ms(0));
  // j2: sent 2 s into the run, started 6 s later on n2; a second `running` (a rerun) does not count.
  t.sent('j2', ms(2_000));
  t.assigned('j2', ms(2_005));
  t.ran('j2', ms(8_000), 'n2');
  t.ran('j2', ms(9_000), 'n2');
  // j3: never started; a job not submitted in the run is left out.
  t.sent('j3', ms(2_500));
  t.ran('other', ms(100), 'n1');
  const r = t.latencies(ms(0));
  expect(r.start.totalCount).toBe(2);
  expect(percentileMs(r.start, 0)).toBeCloseTo(30, 0);
  expect(percentileMs(r.start, 100)).toBeCloseTo(6_000, -1);
  expect(percentileMs(r.scheduler, 0)).toBeCloseTo(5, 0);
  expect(percentileMs(r.agents, 0)).toBeCloseTo(20, 0);
  expect(percentileMs(r.agents, 100)).toBeCloseTo(5_995, -1);
  expect([...r.lateByNode]).toEqual([['n2', 1]]);
  expect({ slowest: r.slowest, slowestEarly: r.slowestEarly }).toEqual({ slowest: 1, slowestEarly: 0 });
});
