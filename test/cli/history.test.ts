import { describe, expect, test } from 'vitest';
import { formatElapsed, parseTimeArg, renderHistory, startOfToday } from '../../cli/history';
import { isActiveInWindow, mergeUsages } from '../../src/archive';
import { historyRow, type JobView } from '../../src/protocol';
import { usage } from '../billing/fixtures';

const NOW = Date.parse('2026-11-02T10:00:00Z');

describe('qy history times', () => {
  const cases = [
    { text: 'now', want: NOW },
    { text: '30m', want: NOW - 30 * 60_000 },
    { text: '12h', want: NOW - 12 * 3_600_000 },
    { text: '7d', want: NOW - 7 * 86_400_000 },
    { text: '2w', want: NOW - 14 * 86_400_000 },
    { text: '2026-11-01T08:00:00Z', want: Date.parse('2026-11-01T08:00:00Z') },
    { text: '2026-11-01T08:00+08:00', want: Date.parse('2026-11-01T00:00:00Z') },
    { text: '2026-11-01', want: new Date(2026, 10, 1).getTime() },
    { text: '2026-11-01T08:30', want: new Date(2026, 10, 1, 8, 30).getTime() },
  ];
  for (const c of cases) test(`${c.text} is read`, () => expect(parseTimeArg(c.text, NOW)).toBe(c.want));
  for (const text of ['yesterday', '7 days', '2026-13-45T99:99', '1y']) test(`${text} is refused`, () => expect(() => parseTimeArg(text, NOW)).toThrow(/is not a time/));
  test('the default window starts at local midnight', () => expect(startOfToday(NOW)).toBe(new Date(new Date(NOW).getFullYear(), new Date(NOW).getMonth(), new Date(NOW).getDate()).getTime()));
  test('elapsed time as sacct shows it', () => {
    expect([formatElapsed(null), formatElapsed(0), formatElapsed(3_725), formatElapsed(90_061)]).toEqual(['', '00:00:00', '01:02:05', '1-01:01:01']);
  });
});

describe('history lines', () => {
  const view: JobView = {
    id: 'j1',
    tenant: 'beijing',
    pool: 'super',
    priorityClass: 'urgent',
    dataClass: 'public',
    state: 'running',
    tasks: 2,
    resources: { cpuMillis: 1000, memBytes: 0, gpus: 0, gpuMilli: 0, gpuMemBytes: 0, extended: {} },
    attempts: 2,
    maxAttempts: 3,
    placement: [
      { taskIndex: 0, nodeId: 'hpc-1', cpuMillis: 1000, memBytes: 0, gpuIndices: [], gpuMilliEach: 0, state: 'running' },
      { taskIndex: 1, nodeId: 'hpc-2', cpuMillis: 1000, memBytes: 0, gpuIndices: [], gpuMilliEach: 0, state: 'running' },
    ],
    submittedAt: '2026-11-02T09:00:00.000Z',
    startedAt: '2026-11-02T09:30:00.000Z',
    history: [],
  };

  test('a running job is elapsed until now; its nodes are listed once', () => {
    expect(historyRow(view, NOW)).toMatchObject({ state: 'running', elapsedSeconds: 1800, nodeList: 'hpc-1,hpc-2', finishedAt: null, exitCode: null });
  });

  test('rendered as a table, JSON and CSV', () => {
    const row = historyRow({ ...view, state: 'failed', signal: 'SIGKILL', finishedAt: '2026-11-02T09:31:01.000Z', name: 'a,"b"' }, NOW);
    expect(renderHistory([row], 'table')).toMatch(/^JOBID.*\nj1\s+a,"b"\s+beijing\s+super\s+failed\s+2026-11-02T09:00:00Z\s+2026-11-02T09:30:00Z\s+2026-11-02T09:31:01Z\s+00:01:01\s+2\s+SIGKILL\s+hpc-1,hpc-2\n$/);
    expect(JSON.parse(renderHistory([row], 'json'))).toEqual({ items: [row] });
    expect(renderHistory([row], 'csv').split('\r\n')[1]).toBe('j1,"a,""b""",beijing,super,urgent,failed,2,2026-11-02T09:00:00.000Z,2026-11-02T09:30:00.000Z,2026-11-02T09:31:01.000Z,61,2,,SIGKILL,"hpc-1,hpc-2",');
  });

  test('a window selects jobs in the system during it', () => {
    const job = { submittedAtMs: 100, finishedAtMs: 200 };
    expect([
      isActiveInWindow(job, {}),
      isActiveInWindow(job, { sinceMs: 200 }),
      isActiveInWindow(job, { sinceMs: 201 }),
      isActiveInWindow(job, { untilMs: 100 }),
      isActiveInWindow(job, { untilMs: 101 }),
      isActiveInWindow({ submittedAtMs: 100 }, { sinceMs: 10_000 }),
    ]).toEqual([true, true, false, false, true, true]);
  });

  test('usages in the archive and in memory count once', () => {
    const a = usage('j1', { segments: [{ cpuMilliSeconds: 1 }] });
    const b = usage('j2', { segments: [{ cpuMilliSeconds: 2 }] });
    expect(mergeUsages([a], [a, b])).toEqual([a, b]);
  });
});
