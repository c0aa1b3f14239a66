import { afterEach, describe, expect, test, vi } from 'vitest';
import { CpuCollector, parseProcStat } from '../../agents/collectors/cpu';
import { constantGreen } from '../../agents/collectors/green';
import { HeartbeatSchedule } from '../../src/node-link/heartbeat-schedule';
import { HostTelemetry } from '../../agents/telemetry';

describe('heartbeat schedule', () => {
  test('a node that never sent one is due at once, then once per interval at its phase', () => {
    const s = new HeartbeatSchedule(['a'], 1_000);
    expect(s.nextDueAtMs()).toBe(-Infinity);
    expect(s.takeDue(10_250)).toEqual(['a']);
    // Node 0 of 1 has phase 0: next at the next whole second.
    expect(s.nextDueAtMs()).toBe(11_000);
    expect(s.takeDue(10_999)).toEqual([]);
    expect(s.takeDue(11_000)).toEqual(['a']);
    expect(s.nextDueAtMs()).toBe(12_000);
    expect(s.lastSentAtMs('a')).toBe(11_000);
    expect(s.lastSentAtMs('unknown')).toBe(-Infinity);
  });

  test('nodes of one agent are spread over the interval, each at most one interval after its last', () => {
    const s = new HeartbeatSchedule(['a', 'b', 'c', 'd'], 1_000);
    expect(s.takeDue(5_000)).toEqual(['a', 'b', 'c', 'd']);
    const sent = new Map<string, number[]>();
    for (let t = 5_050; t <= 8_000; t += 50) for (const id of s.takeDue(t)) sent.set(id, [...(sent.get(id) ?? []), t]);
    expect(sent.get('a')).toEqual([6_000, 7_000, 8_000]);
    expect(sent.get('b')).toEqual([5_250, 6_250, 7_250]);
    expect(sent.get('c')).toEqual([5_500, 6_500, 7_500]);
    expect(sent.get('d')).toEqual([5_750, 6_750, 7_750]);
    expect(s.nextDueAtMs()).toBe(8_250);
  });

  test('a new interval from the scheduler applies from each node\'s last heartbeat', () => {
    const s = new HeartbeatSchedule(['a', 'b'], 1_000);
    s.takeDue(0);
    s.setInterval(200);
    expect(s.interval).toBe(200);
    // Phases 0 and 100 within 200 ms: both due well before the old interval's second.
    expect(s.nextDueAtMs()).toBe(100);
    expect(s.takeDue(100)).toEqual(['b']);
    expect(s.takeDue(200)).toEqual(['a']);
  });

  test('without nodes nothing is ever due', () => {
    const s = new HeartbeatSchedule([], 1_000);
    expect(s.takeDue(0)).toEqual([]);
    expect(s.nextDueAtMs()).toBe(Infinity);
  });
});

describe('host telemetry', () => {
  afterEach(() => vi.useRealTimers());

  test('the first line of /proc/stat gives idle and total ticks', () => {
    expect(parseProcStat('cpu  100 5 50 800 20 1 4 0 0 0\ncpu0 1 2 3 4\n')).toEqual({ idle: 820, total: 980 });
    expect(parseProcStat('intr 1 2 3\n')).toBeUndefined();
    expect(parseProcStat('cpu  a b c d\n')).toBeUndefined();
  });

  test('busy share between two samples', () => {
    const reads = [
      { idle: 100, total: 200 },
      { idle: 130, total: 300 },
      { idle: 130, total: 300 },
    ];
    const cpu = new CpuCollector(() => reads.shift()!);
    expect(cpu.sample()).toBeCloseTo(0.7);
    expect(cpu.sample()).toBe(0);
  });

  test('a node without GPUs never runs nvidia-smi', async () => {
    const readGpus = vi.fn(async () => []);
    const t = new HostTelemetry(400, constantGreen(0.5), { gpus: false, readGpus });
    await t.sample(1_000);
    await t.sample(5_000);
    expect(readGpus).not.toHaveBeenCalled();
  });

  test('GPUs are read at most once per refresh period; a sample just taken is reused', async () => {
    const readGpus = vi.fn(async () => [{ index: 0, name: 'NVIDIA A800', memTotalBytes: 80, memUsedBytes: 8, util: 0.5, powerWatts: 300 }]);
    const t = new HostTelemetry(400, constantGreen(0.5), { gpus: true, readGpus, reuseWithinMs: 250, gpuRefreshMs: 5_000 });
    const first = await t.sample(1_000);
    expect(first.gpus).toEqual([{ index: 0, util: 0.5, memUsedBytes: 8 }]);
    expect(await t.sample(1_100)).toEqual(first);
    await t.sample(2_000);
    await t.sample(5_999);
    expect(readGpus).toHaveBeenCalledTimes(1);
    await t.sample(6_500);
    expect(readGpus).toHaveBeenCalledTimes(2);
  });
});
