import type { Assignment, MeasuredUsage, TaskPlacement } from '../../src/protocol';

/** How a task ended, as the runner saw it. */
export interface TaskExit {
  state: 'succeeded' | 'failed' | 'cancelled';
  exitCode?: number;
  signal?: string;
  reason?: string;
  /** CPU seconds and peak memory from the task's cgroup, when it had one. */
  measured?: MeasuredUsage;
}

/** A status as the agent reports it: an exit, or running / lost. */
export interface ReportedStatus {
  state: 'running' | 'succeeded' | 'failed' | 'cancelled' | 'lost';
  exitCode?: number;
  signal?: string;
  reason?: string;
  measured?: MeasuredUsage;
}

/** One task to run on a node. */
export interface TaskContext {
  key: string;
  assignment: Assignment;
  task: TaskPlacement;
  /** The agent's node record for this task's node. */
  nodeId: string;
  logPath: string;
  /** The task's process (leading its process group) once it exists, for the journal. */
  onPid?(pid: number): void;
  onExit(exit: TaskExit): void;
}

/** A started task. */
export interface TaskHandle {
  /** Stops the task: SIGTERM, then SIGKILL after the grace period. Its exit is reported as cancelled. */
  cancel(graceMs: number, reason: string): void;
}

/** Runs tasks: real processes, or simulated sleepers. */
export interface TaskRunner {
  readonly kind: 'process' | 'simulated';
  start(ctx: TaskContext): TaskHandle;
  /** The tail of a task's output. */
  readLog(logPath: string, maxBytes: number): Promise<{ text: string; truncated: boolean } | undefined>;
  /**
   * Gets ready for the first tasks (before any work is taken): what it would otherwise set up at the first.
   * Resolves with what keeps it from running tasks, when it found out (a test task failed), else undefined.
   */
  prepare?(): Promise<string | undefined>;
  /** Releases what the runner holds for the node (its cgroups), once every task has ended. */
  close?(): Promise<void>;
}

/** The environment a task runs with: its allocation, rank and the gang's hosts. */
export function taskEnv(ctx: TaskContext): Record<string, string> {
  const { assignment, task } = ctx;
  const cpus = Math.max(1, Math.ceil(task.cpuMillis / 1000));
  const env: Record<string, string> = {
    QY_JOB_ID: assignment.jobId,
    QY_ATTEMPT_ID: assignment.attemptId,
    QY_NODE_ID: ctx.nodeId,
    QY_TASK_INDEX: String(task.taskIndex),
    QY_RANK: String(task.taskIndex),
    QY_WORLD_SIZE: String(assignment.hosts.length),
    QY_HOSTS: assignment.hosts.join(','),
    QY_CPU_MILLIS: String(task.cpuMillis),
    QY_CPUS: String(cpus),
    OMP_NUM_THREADS: String(cpus),
    QY_MEM_BYTES: String(task.memBytes),
  };
  if (task.gpuIndices.length > 0) {
    env.CUDA_VISIBLE_DEVICES = task.gpuIndices.join(',');
    env.ASCEND_RT_VISIBLE_DEVICES = env.CUDA_VISIBLE_DEVICES;
    if (task.gpuMilliEach < 1000) env.QY_GPU_MILLI = String(task.gpuMilliEach);
  } else env.CUDA_VISIBLE_DEVICES = '';
  return { ...assignment.env, ...env };
}
