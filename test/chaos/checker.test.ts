import { describe, expect, test } from 'vitest';
import { check, parseHistory, type Ack, type CheckInput, type FinalJob, type MeteredTask } from '../../chaos/checker';

/** History lines written by hand, as tasks append them: S/T/E jobId attemptId taskIndex nonce ms. */
const lines = (...l: string[]) => `${l.join('\n')}\n`;
const ok = (jobId: string, attempt = 1, nonce = `${jobId}-n${attempt}`, from = 1000, to = 3000) =>
  [`S ${jobId} ${jobId}-a${attempt} 0 ${nonce} ${from}`, `T ${jobId} ${jobId}-a${attempt} 0 ${nonce} ${from + 500}`, `E ${jobId} ${jobId}-a${attempt} 0 ${nonce} ${to}`];
const done = (id: string, attempt = 1): FinalJob => ({ id, state: 'succeeded', tasks: 1, attemptId: `${id}-a${attempt}` });
const meter = (jobId: string, attempt = 1, runMs = 2000, taskIndex = 0): MeteredTask => ({ jobId, attemptId: `${jobId}-a${attempt}`, taskIndex, runMs, cpuMilliSeconds: runMs / 10 });
const acks = (...ids: string[]): Ack[] => ids.map((id) => ({ idempotencyKey: `k-${id}`, jobId: id }));

/** A clean run of two jobs; each test breaks one thing in it. */
function clean(): CheckInput {
  return {
    history: parseHistory(lines(...ok('j1'), ...ok('j2', 1, 'n2', 1200, 3300))),
    acks: acks('j1', 'j2'),
    finalJobs: new Map([
      ['j1', done('j1')],
      ['j2', done('j2')],
    ]),
    metered: [meter('j1'), meter('j2')],
    summaryCpuByJob: { j1: 200, j2: 200 },
    auditOk: true,
  };
}

const zeros = { lost: 0, duplicateStarts: 0, overlaps: 0, doubleMetered: 0, unmetered: 0, auditValid: true };

describe('the chaos history checker', () => {
  test('a clean history counts nothing', () => {
    expect(check(clean())).toMatchObject({ acked: 2, ...zeros });
  });

  test('a job retried after a killed attempt, the attempts one after the other, is clean', () => {
    const input = clean();
    // j1-a1 was killed (no end) at its last tick, 1500; j1-a2 started after it and finished.
    input.history = parseHistory(lines('S j1 j1-a1 0 x 1000', 'T j1 j1-a1 0 x 1500', ...ok('j1', 2, 'y', 4000, 6000), ...ok('j2', 1, 'n2')));
    input.finalJobs = new Map([
      ['j1', done('j1', 2)],
      ['j2', done('j2')],
    ]);
    input.metered = [meter('j1', 2), meter('j2')];
    expect(check(input)).toMatchObject(zeros);
  });

  test('lost: an acknowledged job still pending, unknown to the API, failed, or succeeded without its work done', () => {
    for (const mutate of [
      (i: CheckInput) => (i.finalJobs as Map<string, FinalJob>).set('j2', { id: 'j2', state: 'pending', tasks: 1 }),
      (i: CheckInput) => (i.finalJobs as Map<string, FinalJob>).delete('j2'),
      (i: CheckInput) => (i.finalJobs as Map<string, FinalJob>).set('j2', { id: 'j2', state: 'failed', tasks: 1, attemptId: 'j2-a1' }),
      (i: CheckInput) => (i.history = parseHistory(lines(...ok('j1'), 'S j2 j2-a1 0 n2 1200', 'T j2 j2-a1 0 n2 1700'))),
    ]) {
      const input = clean();
      mutate(input);
      const result = check(input);
      expect(result.lost).toBe(1);
      expect(result.examples.lost?.[0]).toMatch(/^j2: /);
    }
  });

  test('duplicateStarts: one attempt started by two processes (two nonces), even one after the other', () => {
    const input = clean();
    input.history = parseHistory(lines(...ok('j1'), ...ok('j2', 1, 'first', 1000, 2000), ...ok('j2', 1, 'second', 5000, 6000)));
    const result = check(input);
    expect(result.duplicateStarts).toBe(1);
    expect(result.overlaps).toBe(0); // one attempt twice is not two attempts at once
    expect(result.examples.duplicateStarts[0]).toBe('j2-a1/0 started 2 times (nonces first, second)');
  });

  test('duplicateStarts: one idempotency key acknowledged with two jobs', () => {
    const input = clean();
    input.acks.push({ idempotencyKey: 'k-j1', jobId: 'j2' });
    expect(check(input).duplicateStarts).toBe(1);
  });

  test('overlaps: two attempts of one job alive at once, seen by a tick of the first after the second started', () => {
    const input = clean();
    // j1-a1 orphaned on a cut-off node keeps ticking until 5000; j1-a2 started elsewhere at 4000.
    input.history = parseHistory(lines('S j1 j1-a1 0 x 1000', 'T j1 j1-a1 0 x 5000', ...ok('j1', 2, 'y', 4000, 6000), ...ok('j2', 1, 'n2')));
    input.finalJobs = new Map([
      ['j1', done('j1', 2)],
      ['j2', done('j2')],
    ]);
    input.metered = [meter('j1', 2), meter('j2')];
    const result = check(input);
    expect(result).toMatchObject({ ...zeros, overlaps: 1 });
    expect(result.examples.overlaps[0]).toBe('j1/0: j1-a1 alive 1000..5000, j1-a2 started 4000');
  });

  test('doubleMetered: a task metered twice, metering for an attempt that never ran, a summary above its tasks', () => {
    const twice = clean();
    twice.metered.push(meter('j1'));
    twice.summaryCpuByJob = { j1: 400, j2: 200 };
    expect(check(twice)).toMatchObject({ ...zeros, doubleMetered: 1 });

    const phantom = clean();
    phantom.metered.push(meter('j1', 7, 1500));
    phantom.summaryCpuByJob = { j1: 350, j2: 200 };
    expect(check(phantom)).toMatchObject({ ...zeros, doubleMetered: 1 });

    const summary = clean();
    summary.summaryCpuByJob = { j1: 400, j2: 200 };
    expect(check(summary)).toMatchObject({ ...zeros, doubleMetered: 1 });
  });

  test('unmetered: a succeeded job whose final attempt has no metered usage, or a summary below its tasks', () => {
    const missing = clean();
    missing.metered = [meter('j1')];
    missing.summaryCpuByJob = { j1: 200 };
    const result = check(missing);
    expect(result).toMatchObject({ ...zeros, unmetered: 1 });
    expect(result.examples.unmetered[0]).toBe('j2-a1/0: succeeded, no metered usage');

    const summary = clean();
    summary.summaryCpuByJob = { j1: 200, j2: 100 };
    expect(check(summary)).toMatchObject({ ...zeros, unmetered: 1 });
  });

  test('auditValid: false when the chain did not verify', () => {
    const input = clean();
    input.auditOk = false;
    expect(check(input)).toMatchObject({ ...zeros, auditValid: false });
  });

  test('torn lines are counted, not guessed at; a run whose start line was torn still counts from its first tick', () => {
    const h = parseHistory(lines('S j1 j1-a1 0 x 1000', 'T j1 j1-a1 0 x', 'T j1 j1-a', 'T j2 j2-a1 0 y 2000', 'E j2 j2-a1 0 y 2500'));
    expect(h.unreadable).toBe(2);
    expect(h.runs).toEqual([
      { jobId: 'j1', attemptId: 'j1-a1', taskIndex: 0, nonce: 'x', startMs: 1000, lastSeenMs: 1000 },
      { jobId: 'j2', attemptId: 'j2-a1', taskIndex: 0, nonce: 'y', startMs: 2000, lastSeenMs: 2500, endMs: 2500 },
    ]);
  });
});
