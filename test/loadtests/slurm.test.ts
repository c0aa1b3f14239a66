import { expect, test } from 'vitest';
import { DONE_LINE, eventTimes, LAUNCH_LINE, logLineMs, SLURM_SETTINGS, schedulerParametersOf, slurmConf } from '../../loadtests/slurm';

test('bench:slurm reads event times to the millisecond from Slurm logs, the first per job across the nodes’ logs', () => {
  const nodeA = ['[2026-12-05T21:38:27.239] Launching batch job 5 for UID 0', '[2026-12-05T21:38:29.001] Launching batch job 5 for UID 0', 'garbage line'].join('\n');
  const nodeB = '[2026-12-05T21:38:28.100] Launching batch job 12 for UID 0\n[2026-12-05T21:38:28.200] Launching batch job 7 for UID 0\n';
  const launched = eventTimes([nodeA, nodeB], LAUNCH_LINE);
  expect([...launched.keys()].sort((a, b) => a - b)).toEqual([5, 7, 12]);
  expect(launched.get(5)).toBe(new Date('2026-12-05T21:38:27.239').getTime());
  expect(launched.get(12)! - launched.get(5)!).toBe(861);

  const ctld = '[2026-12-05T21:38:27.402] _job_complete: JobId=5 WEXITSTATUS 0\n[2026-12-05T21:38:27.403] _job_complete: JobId=5 done\n';
  expect(eventTimes([ctld], DONE_LINE).get(5)).toBe(new Date('2026-12-05T21:38:27.403').getTime());
  expect(logLineMs('[2026-12-05T21:38:27] whole seconds')).toBe(new Date('2026-12-05T21:38:27').getTime());
  expect(logLineMs('no time here')).toBeUndefined();
});

test('bench:slurm’s slurm.conf has one slurmd per node on its own port, the chosen settings and overridable node sizes', () => {
  const conf = slurmConf({ dir: '/tmp/x', host: 'vm', ctldPort: 4000, nodePorts: [4001, 4002, 4003], cores: 8, schedulerParameters: schedulerParametersOf('throughput'), mungeSocket: '/tmp/x/munge.sock' });
  const nodes = conf.split('\n').filter((l) => l.startsWith('NodeName='));
  expect(nodes).toHaveLength(3);
  expect(nodes[2]).toContain('NodeName=s003 ');
  expect(nodes[2]).toContain('Port=4003 CPUs=8');
  expect(conf).toContain(`SchedulerParameters=${SLURM_SETTINGS.throughput}\n`);
  expect(conf).toContain('SlurmdParameters=config_overrides\n');
  expect(conf).toContain('AuthInfo=socket=/tmp/x/munge.sock\n');
});

test('bench:slurm runs custom SchedulerParameters only when given, as one list without spaces', () => {
  expect(schedulerParametersOf('custom', 'defer,batch_sched_delay=20')).toBe('defer,batch_sched_delay=20');
  expect(() => schedulerParametersOf('custom')).toThrow(/--scheduler-parameters/);
  expect(() => schedulerParametersOf('custom', 'defer\nNodeName=x')).toThrow(/without spaces/);
  expect(schedulerParametersOf('low-latency')).toBe('batch_sched_delay=1');
});
