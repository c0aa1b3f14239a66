/**
 * The process eval:green forks to make runs beside it: given the evaluation's settings once, it makes the same
 * workloads (EvalGreenRuns), then the runs of each window and workload asked for, sent back over IPC.
 */
import { EvalGreenRuns, type EvalGreenSettings, type WorkloadRuns } from './eval-green-runs';

export type EvalGreenRequest = { kind: 'settings'; settings: EvalGreenSettings } | { kind: 'run'; task: number; startMs: number; workload: number };
export type EvalGreenReply = { kind: 'ready' } | { kind: 'runs'; task: number; runs: WorkloadRuns } | { kind: 'failed'; message: string };

let made: EvalGreenRuns | undefined;

// A reply the evaluation can no longer take (it ended, or failed elsewhere) ends this process quietly.
const send = (reply: EvalGreenReply) => {
  if (!process.connected) process.exit(0);
  process.send!(reply, undefined, {}, (err) => {
    if (err) process.exit(0);
  });
};

process.on('message', (request: EvalGreenRequest) => {
  try {
    if (request.kind === 'settings') {
      made = new EvalGreenRuns(request.settings);
      send({ kind: 'ready' });
    } else {
      if (!made) throw new Error('a run asked for before the settings');
      send({ kind: 'runs', task: request.task, runs: made.run(request.startMs, request.workload) });
    }
  } catch (err) {
    send({ kind: 'failed', message: (err as Error).message });
  }
});
// The evaluation is over (or gone): nothing more will be asked.
process.on('disconnect', () => process.exit(0));
