import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CgroupManager, CpuSetAllocator, cpuQuotaUs, detectCgroups, parseCpuList, parseMounts } from '../../agents/cgroups';
import { ProcessRunner } from '../../agents/runners/process-runner';
import { waitUntil } from '../helpers/api';
import { runTask } from '../helpers/run-task';

const MiB = 1024 ** 2;

/** A fake /sys/fs/cgroup in a temporary folder, and the mount table that describes it. */
function fakeSys(mounts: { dir: string; type: 'cgroup' | 'cgroup2'; options?: string; controllers?: string }[]): { root: string; mountsText: string } {
  const root = mkdtempSync(join(tmpdir(), 'qy-fake-sys-'));
  const lines = ['proc /proc proc rw 0 0', `tmpfs ${root} tmpfs rw 0 0`];
  for (const m of mounts) {
    const dir = join(root, m.dir);
    mkdirSync(dir, { recursive: true });
    if (m.type === 'cgroup2') writeFileSync(join(dir, 'cgroup.controllers'), m.controllers ?? '');
    lines.push(`${m.type} ${dir} ${m.type} rw,nosuid,relatime${m.options ? `,${m.options}` : ''} 0 0`);
  }
  return { root, mountsText: lines.join('\n') };
}

describe('cgroup detection (fake /sys trees)', () => {
  test('v2 with its controllers is chosen first', () => {
    const sys = fakeSys([
      { dir: 'cpu', type: 'cgroup', options: 'cpu' },
      { dir: 'unified', type: 'cgroup2', controllers: 'cpuset cpu io memory hugetlb pids rdma misc' },
    ]);
    expect(detectCgroups(sys.mountsText)).toEqual({ version: 'v2', root: join(sys.root, 'unified'), cpuset: true });
  });

  test('this machine’s layout: v1 controllers, and a cgroup2 mount without controllers, is v1', () => {
    const sys = fakeSys([
      ...['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'pids'].map((c) => ({ dir: c, type: 'cgroup' as const, options: c })),
      { dir: 'systemd', type: 'cgroup', options: 'name=systemd' },
      { dir: 'unified', type: 'cgroup2', controllers: '' },
    ]);
    const d = detectCgroups(sys.mountsText);
    expect(d.version).toBe('v1');
    if (d.version !== 'v1') return;
    expect(d.roots).toEqual({ cpu: join(sys.root, 'cpu'), cpuacct: join(sys.root, 'cpuacct'), cpuset: join(sys.root, 'cpuset'), memory: join(sys.root, 'memory'), devices: join(sys.root, 'devices'), pids: join(sys.root, 'pids') });
  });

  test('co-mounted v1 controllers (cpu,cpuacct) share one directory', () => {
    const sys = fakeSys([
      { dir: 'cpu,cpuacct', type: 'cgroup', options: 'cpu,cpuacct' },
      { dir: 'memory', type: 'cgroup', options: 'memory' },
      { dir: 'pids', type: 'cgroup', options: 'pids' },
    ]);
    const d = detectCgroups(sys.mountsText);
    expect(d).toMatchObject({ version: 'v1', roots: { cpu: join(sys.root, 'cpu,cpuacct'), cpuacct: join(sys.root, 'cpu,cpuacct') } });
  });

  test('nothing usable is none, with the reason', () => {
    expect(detectCgroups('proc /proc proc rw 0 0')).toEqual({ version: 'none', reason: 'no cgroup hierarchy is mounted' });
    const sys = fakeSys([
      { dir: 'unified', type: 'cgroup2', controllers: 'io' },
      { dir: 'cpu', type: 'cgroup', options: 'cpu' },
    ]);
    const d = detectCgroups(sys.mountsText);
    expect(d.version).toBe('none');
    expect(d.version === 'none' && d.reason).toMatch(/lacks the cpu, memory, pids controller.*cgroup v1 lacks the cpuacct, memory, pids/);
  });

  test('mount paths with escaped spaces are decoded', () => {
    expect(parseMounts('cgroup /sys/fs/cgroup/a\\040b cgroup rw,cpu 0 0')).toEqual([{ target: '/sys/fs/cgroup/a b', type: 'cgroup', options: ['rw', 'cpu'] }]);
  });

  test('a fake v1 tree gets each task’s limits written, and the agent cleans it', async () => {
    const sys = fakeSys(['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'].map((c) => ({ dir: c, type: 'cgroup' as const, options: c })));
    writeFileSync(join(sys.root, 'cpuset', 'cpuset.cpus'), '0-3');
    writeFileSync(join(sys.root, 'cpuset', 'cpuset.mems'), '0');
    const opened = CgroupManager.open({ nodeId: 'n1', parent: 'qy', mountsText: sys.mountsText });
    expect(opened.enforcement).toEqual({ cgroups: 'v1', reason: 'no devices controller: GPUs are hidden by environment only' });
    const m = opened.manager!;
    const half = m.create('job-a1/0', { cpuMillis: 500, memBytes: 256 * MiB, pidsMax: 100, gpuIndices: [] });
    const read = (c: string, f: string, name = 'job-a1_0') => readFileSync(join(sys.root, c, 'qy', 'n1', name, f), 'utf8');
    expect(read('cpu', 'cpu.cfs_quota_us')).toBe('50000');
    expect(read('cpu', 'cpu.cfs_period_us')).toBe('100000');
    expect(read('memory', 'memory.limit_in_bytes')).toBe(String(256 * MiB));
    expect(read('pids', 'pids.max')).toBe('100');
    // Without whole cores it joins the node's shared cpuset instead of getting one of its own.
    expect(read('cpuset', 'cpuset.cpus', '_shared')).toBe('0,1,2,3');
    expect(half.procsFiles).toEqual([...['cpu', 'cpuacct', 'memory', 'pids'].map((c) => join(sys.root, c, 'qy', 'n1', 'job-a1_0', 'cgroup.procs')), join(sys.root, 'cpuset', 'qy', 'n1', '_shared', 'cgroup.procs')]);
    // Two whole cores: exclusive, and the shared task leaves them.
    m.create('job-b1/0', { cpuMillis: 2000, memBytes: MiB, pidsMax: 100, gpuIndices: [] });
    expect(read('cpuset', 'cpuset.cpus', 'job-b1_0')).toBe('0,1');
    expect(read('cpuset', 'cpuset.cpus', '_shared')).toBe('2,3');
    expect(read('cpu', 'cpu.cfs_quota_us', 'job-b1_0')).toBe('200000');
    // Its cores go back to the shared set when it ends; the agent's next start removes what is left.
    m.released('job-b1_0');
    expect(read('cpuset', 'cpuset.cpus', '_shared')).toBe('0,1,2,3');
    expect(await m.cleanStale()).toBe(2);
    expect(readdirSync(join(sys.root, 'cpu', 'qy', 'n1'))).toEqual([]);
  });

  test('a node that declares more cores than the machine has gives no exclusive cores, and says so', () => {
    const sys = fakeSys(['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'].map((c) => ({ dir: c, type: 'cgroup' as const, options: c })));
    writeFileSync(join(sys.root, 'cpuset', 'cpuset.cpus'), '0-3');
    writeFileSync(join(sys.root, 'cpuset', 'cpuset.mems'), '0');
    // Exactly the machine's 4 CPUs: exclusive cores as before.
    const fits = CgroupManager.open({ nodeId: 'fits', parent: 'qy', mountsText: sys.mountsText, declaredCpuMillis: 4000 });
    expect(fits.manager!.noExclusiveCores).toBeUndefined();
    expect(fits.manager!.create('job-f1/0', { cpuMillis: 2000, memBytes: MiB, pidsMax: 100, gpuIndices: [] }).procsFiles).toContain(join(sys.root, 'cpuset', 'qy', 'fits', 'job-f1_0', 'cgroup.procs'));
    // 8 declared on 4: a whole-core task gets its quota, in no cpuset of the agent's.
    const over = CgroupManager.open({ nodeId: 'over', parent: 'qy', mountsText: sys.mountsText, declaredCpuMillis: 8000 });
    expect(over.enforcement).toEqual({ cgroups: 'v1', reason: 'no devices controller: GPUs are hidden by environment only; no exclusive cores: the node declares 8 cores on 4 CPUs (CPU quotas only)' });
    const whole = over.manager!.create('job-o1/0', { cpuMillis: 2000, memBytes: MiB, pidsMax: 100, gpuIndices: [] });
    expect(readFileSync(join(sys.root, 'cpu', 'qy', 'over', 'job-o1_0', 'cpu.cfs_quota_us'), 'utf8')).toBe('200000');
    expect(whole.procsFiles).toEqual(['cpu', 'cpuacct', 'memory', 'pids'].map((c) => join(sys.root, c, 'qy', 'over', 'job-o1_0', 'cgroup.procs')));
    expect(existsSync(join(sys.root, 'cpuset', 'qy', 'over', 'job-o1_0'))).toBe(false);
  });
});

test('CPU quota and exclusive cores', () => {
  expect(cpuQuotaUs(500)).toBe(50_000);
  expect(cpuQuotaUs(1)).toBe(1_000); // the kernel's minimum
  expect(parseCpuList('0-2,5,7-8\n')).toEqual([0, 1, 2, 5, 7, 8]);
  const cpus = new CpuSetAllocator([0, 1, 2, 3]);
  expect(cpus.take('a', 2)).toEqual([0, 1]);
  expect(cpus.take('b', 2)).toBeUndefined(); // one core stays for the tasks that share
  expect(cpus.take('b', 1)).toEqual([2]);
  expect(cpus.shared()).toEqual([3]);
  cpus.release('a');
  expect(cpus.shared()).toEqual([0, 1, 3]);
});

// ---- Real cgroups: run where this process can create them, and say so where it cannot. ----------------

// One cgroup per task here (the pooled cgroups have their own tests below).
const real = CgroupManager.open({ nodeId: `test-${process.pid}`, parent: 'qingyang-test', poolSize: 0 });
const reason = real.enforcement.reason ?? '';
if (!real.manager) console.warn(`SKIPPED real-cgroup tests: ${reason}`);
afterAll(async () => {
  await real.manager?.dispose();
  await pooled.manager?.dispose();
  await prefilled.manager?.dispose();
  for (const dir of real.manager ? ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'devices', 'unified'].map((c) => `/sys/fs/cgroup/${c}/qingyang-test`) : []) {
    try {
      rmdirSync(dir);
    } catch {
      // absent, or another run's cgroups are still in it
    }
  }
});

test('where no cgroup can be created, the agent says why instead of pretending', () => {
  const mountsText = ['cpu', 'cpuacct', 'memory', 'pids'].map((c) => `cgroup /etc/hostname/qy-no-such-${c} cgroup rw,${c} 0 0`).join('\n');
  const opened = CgroupManager.open({ nodeId: 'n1', mountsText });
  expect(opened.manager).toBeUndefined();
  expect(opened.enforcement).toMatchObject({ cgroups: 'none', reason: expect.stringMatching(/^cannot create cgroups under \/etc\/hostname\/qy-no-such-cpu\/qingyang\/n1: /) });
});

describe.skipIf(!real.manager)(`real cgroups (${real.enforcement.cgroups})`, () => {
  const runner = new ProcessRunner(1_000, { cgroups: real.manager, isolation: null });

  test('a task given 0.5 core that runs two busy loops for 4 s uses at most about 2 CPU-seconds', { timeout: 30_000 }, async () => {
    // The task shows the quota of the cgroup it runs in (v1 cpu.cfs_quota_us, v2 cpu.max).
    const quotaFile = `${real.manager!.base}/busy-${process.pid}-a1_0/${real.enforcement.cgroups === 'v2' ? 'cpu.max' : 'cpu.cfs_quota_us'}`;
    const t = runTask(runner, ['sh', '-c', `echo quota=$(cat ${quotaFile}); while :; do :; done & a=$!; while :; do :; done & b=$!; sleep 4; kill $a $b; wait; echo done`], { cpuMillis: 500, jobId: `busy-${process.pid}` });
    const exit = await t.exit;
    expect(readFileSync(t.logPath, 'utf8')).toMatch(/^quota=50000( 100000)?$/m);
    console.log(`0.5 core, two busy loops for 4 s: ${exit.measured?.cpuSeconds.toFixed(2)} CPU-seconds (cgroup), peak memory ${((exit.measured?.peakMemBytes ?? 0) / MiB).toFixed(1)} MiB`);
    expect(exit.state).toBe('succeeded');
    expect(exit.measured).toBeDefined();
    // 0.5 core × 4 s = 2 CPU-seconds; the slack covers the shell's start and the CFS period edges.
    expect(exit.measured!.cpuSeconds).toBeLessThanOrEqual(2.4);
    expect(exit.measured!.cpuSeconds).toBeGreaterThan(0.5); // the loops did run, and were counted
  });

  test('a task given 256 MiB that touches 600 MiB ends failed with the out-of-memory reason', { timeout: 30_000 }, async () => {
    const touch = 'const b = []; for (let i = 0; i < 60; i++) b.push(Buffer.alloc(10 * 1024 * 1024, 1)); console.log("survived")';
    const t = runTask(runner, [process.execPath, '-e', touch], { memBytes: 256 * MiB });
    const exit = await t.exit;
    console.log(`256 MiB task touching 600 MiB: ${exit.state}, ${exit.reason}; peak ${((exit.measured?.peakMemBytes ?? 0) / MiB).toFixed(0)} MiB`);
    expect(exit).toMatchObject({ state: 'failed', reason: 'out of memory (limit 256 MiB)', signal: 'SIGKILL' });
    expect(exit.measured!.peakMemBytes).toBeLessThanOrEqual(256 * MiB);
    expect(readFileSync(t.logPath, 'utf8')).not.toMatch(/survived/);
  });

  test('the pids limit holds, and a task’s cgroup is gone once it ended', { timeout: 30_000 }, async () => {
    const small = new ProcessRunner(1_000, { cgroups: real.manager, isolation: null, pidsMax: 20 });
    const t = runTask(small, ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do sleep 5 & echo started; i=$((i+1)); done']);
    const exit = await t.exit;
    const log = readFileSync(t.logPath, 'utf8');
    const started = log.split('\n').filter((l) => l === 'started').length;
    expect(exit.state).toBe('failed'); // the shell could not fork past the limit
    expect(log).toMatch(/fork/i);
    expect(started).toBeGreaterThan(5);
    expect(started).toBeLessThan(20);
    expect(real.manager!.base).toMatch(/qingyang-test/);
    expect(() => readFileSync(join(real.manager!.base, t.key.replace('/', '_'), 'cgroup.procs'))).toThrow();
  });

  test('a task cancelled while its cgroup is being made never runs, and its cgroup goes', { timeout: 30_000 }, async () => {
    const t = runTask(runner, ['sh', '-c', 'echo ran']);
    t.cancel(1_000, 'cancelled at once');
    expect(await t.exit).toEqual({ state: 'cancelled', reason: 'cancelled at once' });
    const dir = join(real.manager!.base, t.key.replace('/', '_'));
    await waitUntil(() => (existsSync(dir) ? undefined : true), 10_000, () => `${dir} is still there`);
    expect(existsSync(t.logPath) ? readFileSync(t.logPath, 'utf8') : '').toBe('');
  });
});

// ---- Pooled cgroups (v1): an emptied task cgroup holds the next task --------------------------------------

const pooled = CgroupManager.open({ nodeId: `pool-${process.pid}`, parent: 'qingyang-test', poolSize: 1 });
const prefilled = CgroupManager.open({ nodeId: `prefill-${process.pid}`, parent: 'qingyang-test', poolSize: 4 });

/** A shell line printing the task's own v1 cgroup (from /proc/self/cgroup) and one of its control files. */
const showCgroup = (controller: string, file: string) => `d=$(grep ':${controller}:' /proc/self/cgroup | cut -d: -f3); echo ${controller}=$d; echo ${file}=$(cat /sys/fs/cgroup/${controller}$d/${file})`;
const logOf = (t: { logPath: string }) => readFileSync(t.logPath, 'utf8');
/** The value of a `name=value` line of a log. */
const field = (log: string, name: string) => log.split('\n').find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1);

describe.skipIf(pooled.enforcement.cgroups !== 'v1')('pooled cgroups (v1)', () => {
  const runner = new ProcessRunner(1_000, { cgroups: pooled.manager, isolation: null });

  test('the next task runs in the emptied cgroup, with its own limits and counters that start again from zero', { timeout: 30_000 }, async () => {
    // A task that burns CPU and touches 100 MiB, under 512 MiB and half a core.
    const burn = 'const b = Buffer.alloc(100 * 1024 * 1024, 1); const t = process.cpuUsage(); while (process.cpuUsage(t).user < 400000); console.log(b.length)';
    const first = runTask(runner, ['sh', '-c', `${showCgroup('memory', 'memory.limit_in_bytes')}; ${showCgroup('cpu', 'cpu.cfs_quota_us')}; exec ${process.execPath} -e '${burn}'`], { cpuMillis: 500, memBytes: 512 * MiB });
    const e1 = await first.exit;
    expect(e1.state).toBe('succeeded');
    expect(e1.measured!.cpuSeconds).toBeGreaterThan(0.35);
    expect(e1.measured!.peakMemBytes).toBeGreaterThan(100 * MiB);
    expect(field(logOf(first), 'memory.limit_in_bytes')).toBe(String(512 * MiB));
    expect(field(logOf(first), 'cpu.cfs_quota_us')).toBe('50000');
    // The next one: other limits, almost no work.
    const second = runTask(runner, ['sh', '-c', `${showCgroup('memory', 'memory.limit_in_bytes')}; ${showCgroup('cpu', 'cpu.cfs_quota_us')}`], { cpuMillis: 250, memBytes: 128 * MiB });
    const e2 = await second.exit;
    expect(e2.state).toBe('succeeded');
    expect(field(logOf(second), 'memory')).toBe(field(logOf(first), 'memory')); // the same cgroup
    expect(field(logOf(second), 'memory')).toMatch(/\/slot-\d+$/);
    expect(field(logOf(second), 'memory.limit_in_bytes')).toBe(String(128 * MiB));
    expect(field(logOf(second), 'cpu.cfs_quota_us')).toBe('25000');
    expect(e2.measured!.cpuSeconds).toBeLessThan(0.2); // not the first task's 0.4 s
    expect(e2.measured!.peakMemBytes).toBeLessThan(64 * MiB); // not the first task's 100 MiB
    // No memory limit, then one again (memory + swap is never set below memory on the way).
    for (const memBytes of [0, 64 * MiB]) {
      const t = runTask(runner, ['sh', '-c', `${showCgroup('memory', 'memory.limit_in_bytes')}; ${showCgroup('memory', 'memory.memsw.limit_in_bytes')}`], { cpuMillis: 250, memBytes });
      expect((await t.exit).state).toBe('succeeded');
      expect(field(logOf(t), 'memory')).toBe(field(logOf(first), 'memory'));
      const limit = Number(field(logOf(t), 'memory.limit_in_bytes'));
      if (memBytes === 0) expect(limit).toBeGreaterThan(2 ** 60);
      else expect(limit).toBe(memBytes);
      expect(field(logOf(t), 'memory.memsw.limit_in_bytes')).toBe(field(logOf(t), 'memory.limit_in_bytes'));
    }
  });

  test('an OOM kill is counted for its task only, and page cache a task left is not the next one’s peak', { timeout: 30_000 }, async () => {
    const touch = 'const b = []; for (let i = 0; i < 60; i++) b.push(Buffer.alloc(10 * 1024 * 1024, 1)); console.log("survived")';
    // Half a core each: none of them takes an exclusive core, so they share one pooled cgroup in turn.
    const oom = runTask(runner, [process.execPath, '-e', touch], { cpuMillis: 500, memBytes: 256 * MiB });
    expect(await oom.exit).toMatchObject({ state: 'failed', reason: 'out of memory (limit 256 MiB)' });
    // The next task in that cgroup fails for its own reason, which is not taken for the earlier kill.
    const plain = runTask(runner, ['sh', '-c', 'exit 3'], { cpuMillis: 500, memBytes: 256 * MiB });
    expect(await plain.exit).toMatchObject({ state: 'failed', exitCode: 3, reason: 'exited with code 3' });
    // 64 MiB of page cache, charged to the cgroup, then a task that uses next to nothing.
    const file = join(mkdtempSync(join(tmpdir(), 'qy-cache-')), 'f');
    const writer = runTask(runner, ['sh', '-c', `dd if=/dev/zero of=${file} bs=1M count=64 status=none; ${showCgroup('memory', 'memory.usage_in_bytes')}`], { cpuMillis: 500, memBytes: 256 * MiB });
    expect((await writer.exit).state).toBe('succeeded');
    const after = runTask(runner, ['sh', '-c', showCgroup('memory', 'memory.usage_in_bytes')], { cpuMillis: 500, memBytes: 256 * MiB });
    const e = await after.exit;
    expect(field(logOf(after), 'memory')).toBe(field(logOf(writer), 'memory'));
    expect(Number(field(logOf(writer), 'memory.usage_in_bytes'))).toBeGreaterThan(60 * MiB); // the writer's cache was charged
    expect(e).toMatchObject({ state: 'succeeded', exitCode: 0 }); // not reported out of memory: the earlier kill was another task's
    expect(e.measured!.peakMemBytes).toBeLessThan(16 * MiB);
  });

  test('a pool holds at most its size: the cgroups of tasks that ended beyond it are removed', { timeout: 30_000 }, async () => {
    const base = pooled.manager!.base;
    const slots = () => readdirSync(base).filter((e) => e.startsWith('slot-'));
    expect(slots().length).toBeLessThanOrEqual(1);
    // Two at once: the pool (size 1) has one cgroup at most, so a second one is made, and removed after.
    // Both run until the test has seen the two cgroups (a flag file, not a sleep a busy machine could outlast).
    const flag = join(mkdtempSync(join(tmpdir(), 'qy-pool-')), 'go');
    const waitForFlag = ['sh', '-c', `while [ ! -e ${flag} ]; do sleep 0.05; done`];
    const a = runTask(runner, waitForFlag, { cpuMillis: 100 });
    const b = runTask(runner, waitForFlag, { cpuMillis: 100 });
    await waitUntil(() => (slots().length >= 2 ? true : undefined), 10_000, () => `slots: ${slots().join(' ')}`);
    writeFileSync(flag, '');
    expect((await a.exit).state).toBe('succeeded');
    expect((await b.exit).state).toBe('succeeded');
    await waitUntil(() => (slots().length === 1 ? true : undefined), 10_000, () => `slots: ${slots().join(' ')}`);
  });

  test('cgroups made before the first tasks hold them, each task with its own limits, and no more are made', { timeout: 30_000 }, async () => {
    const m = prefilled.manager!;
    const base = m.base;
    const slots = () => readdirSync(base).filter((e) => e.startsWith('slot-')).sort();
    // Two of each kind within a pool of four: for tasks without exclusive cores, and for tasks with (where a cpuset can give them).
    const made = await m.prefill();
    expect(made).toBe(slots().length);
    expect(made).toBeGreaterThanOrEqual(2);
    expect(made).toBeLessThanOrEqual(4);
    const before = slots();
    const runner = new ProcessRunner(1_000, { cgroups: m, isolation: null });
    const half = runTask(runner, ['sh', '-c', `${showCgroup('memory', 'memory.limit_in_bytes')}; ${showCgroup('cpu', 'cpu.cfs_quota_us')}`], { cpuMillis: 500, memBytes: 128 * MiB });
    const e = await half.exit;
    expect(e.state).toBe('succeeded');
    expect(before).toContain(field(logOf(half), 'memory')!.split('/').pop());
    expect(field(logOf(half), 'memory.limit_in_bytes')).toBe(String(128 * MiB));
    expect(field(logOf(half), 'cpu.cfs_quota_us')).toBe('50000');
    expect(e.measured!.peakMemBytes).toBeGreaterThan(0);
    if (made === 4) {
      // A whole core: a prefilled cgroup with a cpuset of its own, given that core alone.
      const whole = runTask(runner, ['sh', '-c', `${showCgroup('memory', 'memory.limit_in_bytes')}; ${showCgroup('cpuset', 'cpuset.cpus')}`], { cpuMillis: 1000, memBytes: 64 * MiB });
      expect((await whole.exit).state).toBe('succeeded');
      expect(before).toContain(field(logOf(whole), 'memory')!.split('/').pop());
      expect(field(logOf(whole), 'memory.limit_in_bytes')).toBe(String(64 * MiB));
      expect(field(logOf(whole), 'cpuset.cpus')).toMatch(/^\d+$/);
    }
    expect(slots()).toEqual(before);
  });
});
