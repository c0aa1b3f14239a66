import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { Journal, type JournalTask } from '../../agents/journal';

const task = (attempt: string, taskIndex = 0, extra: Partial<JournalTask> = {}): JournalTask => ({
  key: `${attempt}/${taskIndex}`,
  jobId: attempt.slice(0, attempt.lastIndexOf('-a')),
  attemptId: attempt,
  nodeId: 'n1',
  taskIndex,
  ...extra,
});

const freshPath = () => join(mkdtempSync(join(tmpdir(), 'qy-journal-')), 'state', 'journal');
/** Reads the file as a new agent process would after a crash: whatever reached the file, nothing else. */
const reopen = (path: string) => new Journal(path);

test('a start reaches the file before it returns, so an agent killed right after never starts the task again', () => {
  const path = freshPath();
  const j = new Journal(path);
  j.started(task('job1-a1'));
  // No close, no flush: the process dies here. What another process reads is what counts.
  expect(readFileSync(path, 'utf8')).toContain('"job1-a1/0"');
  const after = reopen(path);
  expect(after.hasSeen('job1-a1/0')).toBe(true);
  expect(after.hasSeen('job1-a2/0')).toBe(false);
  expect(after.unfinished().map((t) => t.key)).toEqual(['job1-a1/0']);
});

test('a restarted journal tells tasks under way, exits not yet reported, and forgets reported ones (but still knows their keys)', () => {
  const path = freshPath();
  const j = new Journal(path);
  j.started(task('a-a1'));
  j.setPid('a-a1/0', 4242);
  j.started(task('b-a1'));
  j.exited('b-a1/0', { state: 'succeeded', exitCode: 0 });
  j.started(task('c-a1'));
  j.exited('c-a1/0', { state: 'failed', exitCode: 3 });
  j.reported('c-a1/0');
  j.close();

  const after = reopen(path);
  expect(after.unfinished()).toMatchObject([{ ...task('a-a1'), pid: 4242 }]);
  expect(after.unreported()).toMatchObject([{ task: task('b-a1'), exit: { state: 'succeeded', exitCode: 0 } }]);
  for (const key of ['a-a1/0', 'b-a1/0', 'c-a1/0']) expect(after.hasSeen(key)).toBe(true);
});

test('a task cancelled before it came is marked seen, and stays seen across a restart', () => {
  const path = freshPath();
  const j = new Journal(path);
  j.markSeen('late-a1/0');
  expect(j.hasSeen('late-a1/0')).toBe(true);
  j.close();
  const after = reopen(path);
  expect(after.hasSeen('late-a1/0')).toBe(true);
  expect(after.unfinished()).toEqual([]);
});

test('a torn last line after a crash is skipped; the lines before it count', () => {
  const path = freshPath();
  const j = new Journal(path);
  j.started(task('x-a1'));
  j.close();
  appendFileSync(path, '{"t":"start","key":"y-a1/0","jobI');
  const after = reopen(path);
  expect(after.hasSeen('x-a1/0')).toBe(true);
  expect(after.hasSeen('y-a1/0')).toBe(false);
  // The journal goes on appending after the torn line (without compacting first): a later restart still
  // reads the new lines, rather than one glued to the torn fragment.
  after.started(task('z-a1'));
  after.close();
  const again = reopen(path);
  expect(again.hasSeen('z-a1/0')).toBe(true);
  expect(again.unfinished().map((t) => t.key)).toEqual(['x-a1/0', 'z-a1/0']);
});

test('compaction keeps the tasks under way and the keys seen, and drops finished detail', () => {
  const path = freshPath();
  const j = new Journal(path);
  for (let i = 0; i < 50; i++) {
    j.started(task(`done${i}-a1`));
    j.exited(`done${i}-a1/0`, { state: 'succeeded', exitCode: 0 });
    j.reported(`done${i}-a1/0`);
  }
  j.started(task('live-a1', 2, { pid: 77 }));
  j.started(task('exited-a1'));
  j.exited('exited-a1/0', { state: 'cancelled', reason: 'r' });
  const before = readFileSync(path, 'utf8').split('\n').length;
  j.compact();
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  expect(lines.length).toBeLessThan(before);
  expect(lines.filter((l) => l.includes('"t":"reported"'))).toEqual([]);
  j.close();

  const after = reopen(path);
  for (let i = 0; i < 50; i++) expect(after.hasSeen(`done${i}-a1/0`)).toBe(true);
  expect(after.unfinished()).toMatchObject([task('live-a1', 2, { pid: 77 })]);
  expect(after.unreported()).toMatchObject([{ task: task('exited-a1'), exit: { state: 'cancelled', reason: 'r' } }]);
});

test('an exit is journaled with what the task used: a restart before the report was stored reports both again', () => {
  const path = freshPath();
  const j = new Journal(path);
  const usage = [{ hourStartMs: 0, runMs: 1500, cpuMilliSeconds: 1500, gpuMilliSeconds: {}, memMiBSeconds: 96, energyMilliWh: 80, greenMilliWh: 40, carbonMg: 0 }];
  j.started(task('m-a1'));
  j.exited('m-a1/0', { state: 'succeeded', exitCode: 0 }, usage);
  j.close();
  const after = reopen(path);
  expect(after.unreported()).toMatchObject([{ task: task('m-a1'), exit: { state: 'succeeded' }, usage }]);
  after.compact();
  after.close();
  expect(reopen(path).unreported()).toMatchObject([{ usage }]);
});

test('a journal that runs for years stays bounded: compacted as it grows, keeping tasks under way and the recent keys', () => {
  const path = freshPath();
  const j = new Journal(path, { keepSeen: 100, compactEvery: 400 });
  j.started(task('long-a1')); // runs the whole time
  let maxLines = 0;
  for (let i = 0; i < 5_000; i++) {
    const t = task(`j${i}-a1`);
    j.started(t);
    j.setPid(t.key, 1000 + i);
    j.exited(t.key, { state: 'succeeded', exitCode: 0 });
    j.reported(t.key);
    maxLines = Math.max(maxLines, readFileSync(path, 'utf8').split('\n').length);
  }
  j.close();
  // 20,000 lines were appended; the file never held more than one compaction's worth plus what followed it.
  expect(maxLines).toBeLessThanOrEqual(100 + 1 + 400 + 1);
  const after = reopen(path);
  expect(after.unfinished().map((t) => t.key)).toEqual(['long-a1/0']);
  expect(after.hasSeen('j4999-a1/0')).toBe(true); // recent: a late duplicate is still dropped
  expect(after.hasSeen('j0-a1/0')).toBe(false); // long gone
  // In memory too: the running journal forgot the old keys as it compacted.
  expect(j.hasSeen('j0-a1/0')).toBe(false);
  expect(j.hasSeen('long-a1/0')).toBe(true);
});
