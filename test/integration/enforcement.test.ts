import { existsSync, mkdtempSync, readdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CgroupManager } from '../../agents/cgroups';
import { detectIsolation } from '../../agents/sandbox';
import { startNatsServer, type LocalNatsServer } from '../../harness/nats-server';
import type { NodeView } from '../../src/protocol';
import { spawnTs, startScheduler, waitForNodes, type ChildService, type TestScheduler } from '../helpers/stack';

/**
 * A real agent process (agents/main.ts, as operators run it) on this machine: it says what it enforces,
 * runs each task in its own cgroup, and the job's record carries what the cgroup counted.
 */
const MiB = 1024 ** 2;
const PARENT = `qingyang-it-${process.pid}`;
const probe = CgroupManager.open({ nodeId: 'probe', parent: PARENT });
if (!probe.manager) console.warn(`SKIPPED agent enforcement tests: ${probe.enforcement.reason}`);
void probe.manager?.dispose();
/** What the agent will find for sandbox tasks (it runs as this process's user). */
const isolation = detectIsolation();

let nats: LocalNatsServer;
let s: TestScheduler;
let agent: ChildService | undefined;

describe.skipIf(!probe.manager)(`a real agent with ${probe.enforcement.cgroups} cgroups`, () => {
  beforeAll(async () => {
    nats = await startNatsServer();
    // The agent's default fence (4 s + 5 s grace) needs the default down-after of 10 s.
    s = await startScheduler(nats.url, { suspectAfterMs: 3_000, downAfterMs: 10_000 });
    agent = spawnTs('agents/main.ts', [], {
      QY_NATS_URL: nats.url,
      QY_NODE_ID: 'enf-1',
      QY_AGENT_STATE_DIR: mkdtempSync(join(tmpdir(), 'qy-agent-enf-')),
      QY_CGROUP_PARENT: PARENT,
      QY_HEARTBEAT_INTERVAL_MS: '200',
      QY_LOG_LEVEL: 'warn',
    });
    await waitForNodes(s.operator, ['enf-1'], 30_000);
  }, 60_000);

  afterAll(async () => {
    await agent?.stop();
    await s?.close();
    await nats?.dispose();
    // The agent leaves its (empty) node cgroups for its next run; the test removes them.
    for (const ctrl of ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'devices', 'unified']) {
      const dir = join('/sys/fs/cgroup', ctrl, PARENT);
      if (!existsSync(dir)) continue;
      for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) rmdirSync(join(dir, d.name));
      rmdirSync(dir);
    }
  });

  test('GET /v1/nodes/:id shows what the agent enforces', async () => {
    const node = (await s.operator.request<NodeView>('GET', '/v1/nodes/enf-1')).body;
    expect(node.enforcement).toMatchObject({ cgroups: probe.enforcement.cgroups, fence: { afterMs: 4_000, graceMs: 5_000 } });
    expect(['bwrap', 'none']).toContain(node.enforcement!.isolation);
  });

  // Where this machine cannot isolate, sandbox tasks fail instead (test/agents/sandbox.test.ts): skipped, not passed.
  test.skipIf(!isolation.isolation)('a sandboxed task’s home is in the agent’s own folder, and gone when it ends', { timeout: 60_000 }, async () => {
    expect((await s.operator.request<NodeView>('GET', '/v1/nodes/enf-1')).body.enforcement!.isolation).toBe('bwrap');
    const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 100, memBytes: 64 * MiB }, sandbox: true, command: ['sh', '-c', 'echo home=$HOME'] });
    expect((await s.api.waitFor(id, ['succeeded', 'failed'], 45_000)).state).toBe('succeeded');
    const home = /home=(\S+)/.exec((await s.api.request<{ text: string }>('GET', `/v1/jobs/${id}/log`)).body.text)?.[1] ?? '';
    expect(home.startsWith(join(tmpdir(), 'qy-sandbox-enf-1', 'home-'))).toBe(true);
    expect(existsSync(home)).toBe(false);
  });

  test('the job’s record carries the CPU seconds and peak memory its cgroup counted', { timeout: 60_000 }, async () => {
    const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 500, memBytes: 128 * MiB }, command: ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'] });
    const job = await s.api.waitFor(id, ['succeeded', 'failed'], 45_000);
    expect(job.state).toBe('succeeded');
    const task = job.placement![0];
    expect(task.cpuSeconds).toBeGreaterThan(0.01);
    expect(task.peakMemBytes).toBeGreaterThan(0);
    expect(task.peakMemBytes).toBeLessThanOrEqual(128 * MiB);
  });

  test('a task over its memory ends failed with the out-of-memory reason', { timeout: 60_000 }, async () => {
    const touch = 'const b = []; for (let i = 0; i < 30; i++) b.push(Buffer.alloc(10 * 1024 * 1024, 1)); console.log("survived")';
    const id = await s.api.submit({ pool: 'general', resources: { cpuMillis: 500, memBytes: 64 * MiB }, command: [process.execPath, '-e', touch] });
    const job = await s.api.waitFor(id, ['succeeded', 'failed'], 45_000);
    expect(job).toMatchObject({ state: 'failed', reason: 'out of memory (limit 64 MiB)' });
    expect(job.placement![0].reason).toBe('out of memory (limit 64 MiB)');
  });
});
