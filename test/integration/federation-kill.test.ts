import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import type { Agent } from '../../agents/agent';
import { startNatsFederation, type LocalNatsFederation } from '../../harness/nats-server';
import { jobSpecSchema, type JobView } from '../../src/protocol';
import { waitUntil } from '../helpers/api';
import { startAgent, startScheduler, testNode, type TestScheduler } from '../helpers/stack';

/**
 * Three sites (a JetStream meta group survives the loss of one); qy-b's nats-server is killed with SIGKILL
 * while it runs jobs routed from qy-a and qy-a keeps routing. Nothing is lost or run twice.
 */

const SITES = ['qy-a', 'qy-b', 'qy-c'];
let fed: LocalNatsFederation | undefined;
const schedulers = new Map<string, TestScheduler>();
const agents: Agent[] = [];

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => undefined);
  for (const s of schedulers.values()) await s.close().catch(() => undefined);
  await fed?.dispose();
});

test('a site killed mid-run: its running jobs finish once it is back, the rest go elsewhere, none is lost or doubled', async () => {
  fed = await startNatsFederation(SITES);
  const file = join(mkdtempSync(join(tmpdir(), 'qy-federation-')), 'federation.json');
  writeFileSync(
    file,
    JSON.stringify({
      sites: SITES.map((name) => ({ name, pools: ['general'], certified: name === 'qy-a' ? ['public', 'internal', 'restricted'] : ['public', 'internal'] })),
      links: [
        { between: ['qy-a', 'qy-b'], bandwidthGbps: 10, latencyMs: 5 },
        { between: ['qy-a', 'qy-c'], bandwidthGbps: 10, latencyMs: 5 },
        { between: ['qy-b', 'qy-c'], bandwidthGbps: 10, latencyMs: 5 },
      ],
      weights: { secondsPerKgCo2: 0, secondsPerYuan: 0, preferHomeWithinS: 1 },
    }),
  );
  for (const site of SITES) {
    const s = fed.site(site);
    schedulers.set(site, await startScheduler(s.url, { site, federationFile: file, federationNatsUrl: s.fedUrl, federationNatsUser: s.fedUser, federationNatsPassword: s.fedPassword, federationSummaryIntervalMs: 200, federationSiteDownAfterMs: 1_500 }));
    const level = site === 'qy-a' ? 'restricted' : 'internal';
    agents.push(await startAgent(s.url, `${site}-agent`, [testNode(`${site}-n1`, 'general', { securityLevel: level })], 'virtual'));
  }
  const A = schedulers.get('qy-a')!;
  await waitUntil(async () => (SITES.every((site) => schedulers.get(site)!.scheduler.federation!.summariesNow().size === 3 && schedulers.get(site)!.scheduler.store.cluster.nodesOf('general').length === 1) ? true : undefined), 30_000, () => 'sites not ready');

  const job = (extra: Record<string, unknown> = {}) => ({ pool: 'general' as const, resources: { cpuMillis: 4000, memBytes: 1024 ** 3 }, durationSeconds: 4, ...extra });
  const ids: string[] = [];
  // qy-a fills; the next jobs go to qy-b and qy-c (two each fit a site), one restricted job stays home.
  for (let i = 0; i < 6; i++) ids.push(await A.api.submit(job()));
  ids.push(await A.api.submit(job({ dataClass: 'restricted' })));
  const views = await Promise.all(ids.map((id) => A.api.job(id)));
  const atB = views.filter((v) => v.site === 'qy-b').map((v) => v.id);
  expect(atB.length).toBeGreaterThan(0);
  await Promise.all(atB.map((id) => schedulers.get('qy-b')!.api.waitFor(id, ['running'])));

  // kill -9 of qy-b's nats-server: qy-b's scheduler, agent and gateway lose NATS; its jobs keep running on the node.
  const b = fed.site('qy-b').server;
  process.kill(b.pid!, 'SIGKILL');
  // While qy-b is gone, qy-a routes around it.
  const during: string[] = [];
  const onlyB = jobSpecSchema.parse(job({ sites: ['qy-b'] }));
  await waitUntil(async () => (A.scheduler.federation!.route(onlyB, []).reason.includes('qy-b: silent for') ? true : undefined), 10_000, () => 'qy-b still looks alive');
  for (let i = 0; i < 3; i++) during.push(await A.api.submit(job()));
  for (const v of await Promise.all(during.map((id) => A.api.job(id)))) expect(v.site).not.toBe('qy-b');
  await b.restart();

  // Everything ends, once; each job started at exactly one site.
  const all = [...ids, ...during];
  const done: JobView[] = await Promise.all(all.map((id) => A.api.waitFor(id, ['succeeded'], 60_000)));
  for (const v of done) {
    const startedAt: string[] = [];
    for (const site of SITES) {
      const local = await schedulers.get(site)!.api.request<JobView>('GET', `/v1/jobs/${v.id}`);
      if (local.status === 200 && local.body.startedAt && (local.body.site ?? 'qy-a') === site) startedAt.push(site);
    }
    expect(startedAt, v.id).toEqual([v.site]);
  }
  expect(done.find((v) => v.dataClass === 'restricted')!.site).toBe('qy-a');
}, 120_000);
