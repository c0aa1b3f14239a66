import type { TaskState } from './messages';

/**
 * How jobs, attempts and tasks are named on the wire. An attempt of a job is `<jobId>-a<n>` (`<jobId>.<n>`
 * would not be one NATS subject token); a task of an attempt is `<attemptId>/<taskIndex>`, as heartbeats
 * list running tasks and usage records are keyed. Build and read them with these functions only.
 */

/** The attempt id of a job's n-th placement. */
export function attemptIdOf(jobId: string, attempt: number): string {
  return `${jobId}-a${attempt}`;
}

/** The job an attempt id belongs to. */
export function jobIdOfAttempt(attemptId: string): string {
  return attemptId.slice(0, attemptId.lastIndexOf('-a'));
}

/** A task of an attempt: `<attemptId>/<taskIndex>`. */
export function taskKey(task: { attemptId: string; taskIndex: number }): string {
  return `${task.attemptId}/${task.taskIndex}`;
}

/** The attempt and task index a task key names; undefined when it is not one. */
export function parseTaskKey(key: string): { attemptId: string; taskIndex: number } | undefined {
  const slash = key.lastIndexOf('/');
  const taskIndex = Number(key.slice(slash + 1));
  if (slash <= 0 || slash === key.length - 1 || !Number.isInteger(taskIndex) || taskIndex < 0) return undefined;
  return { attemptId: key.slice(0, slash), taskIndex };
}

/** Task states after which the task never runs again (a requeued job runs as a new attempt). */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['succeeded', 'failed', 'cancelled', 'lost']);

/** Whether a task state (or none yet) is terminal. */
export function isTerminalTaskState(state: string | undefined): boolean {
  return state !== undefined && TERMINAL_TASK_STATES.has(state as TaskState);
}
