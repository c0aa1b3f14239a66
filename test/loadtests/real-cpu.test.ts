import { expect, test } from 'vitest';
import { parseCpuSeconds, realNodeSpec, schedCpuSeconds } from '../../loadtests/real';
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
