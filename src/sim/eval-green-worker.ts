/**
 * The process eval:green forks to make runs beside it (forkRuns): given the evaluation's settings once, it makes the same
 * workloads (EvalGreenRuns), then the runs of each window and workload asked for, sent back over IPC.
 */
import { EvalGreenRuns, type EvalGreenReply, type EvalGreenRequest } from './eval-green-runs';

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
      send({ kind: 'runs', runs: made.run(request.startMs, request.workload) });
    }
  } catch (err) {
    send({ kind: 'failed', message: (err as Error).message });
  }
});
// The evaluation is over (or gone): nothing more will be asked.
process.on('disconnect', () => process.exit(0));
