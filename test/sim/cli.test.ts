import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { z } from 'zod';

const run = promisify(execFile);
const sim = (args: string[]) => run(process.execPath, ['--import', 'tsx', 'src/sim/cli.ts', ...args], { maxBuffer: 16 * 1024 * 1024 });

const figures = z.strictObject({
  meanWaitS: z.number().min(0),
  p99WaitS: z.number().min(0),
  meanBoundedSlowdown: z.number().min(1),
  utilisation: z.number().min(0).max(1),
  completed: z.number().int(),
  rejected: z.number().int(),
  greenShare: z.number().min(0).max(1),
  carbonPerJobG: z.number().min(0),
  wallMs: z.number().min(0),
});
const headline = z.strictObject({ trace: z.string(), jobs: z.number().int(), jobsPerSec: z.number().positive(), policies: z.record(z.string(), figures) });
const share = z.number().min(0).max(1);
const fillFigures = z.strictObject({
  unallocatedGpuShare: share,
  unallocatedGpuShareMin: share,
  unallocatedGpuShareMax: share,
  unallocatedGpuShareStdev: z.number().min(0),
  unallocatedGpuShareBySeed: z.array(share),
  allocatedGpuShare: share,
  fragmentedGpuShare: share,
  arrivedTasks: z.number().positive(),
  failedTasks: z.number().min(0),
  wallMs: z.number().min(0),
});
const fillHeadline = z.strictObject({ trace: z.string(), mode: z.literal('fill'), gpus: z.number().int().positive(), seeds: z.array(z.number().int()), policies: z.record(z.string(), fillFigures) });

describe('npm run sim', () => {
  test('--json prints one JSON line with the headline figures per policy, and writes the reports', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qy-sim-'));
    const { stdout, stderr } = await sim(['--trace', 'test/fixtures/lublin_256-first-1000.swf', '--policy', 'fifo,easy-backfill', '--limit', '300', '--json', '--out', out]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = headline.parse(JSON.parse(lines[0]));
    expect(result).toMatchObject({ trace: 'lublin_256-first-1000.swf', jobs: 300 });
    expect(Object.keys(result.policies)).toEqual(['fifo', 'easy-backfill']);
    expect(result.policies['easy-backfill'].meanWaitS).toBeLessThanOrEqual(result.policies.fifo.meanWaitS);
    expect(stderr).toMatch(/wait mean \(s\)/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.results).toHaveLength(2);
    expect(report.results[0].timeline.tS.length).toBeGreaterThan(10);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/<svg/);
    expect(html).toMatch(/super pool: allocated share/);
    // Self-contained: nothing to fetch.
    expect(html).not.toMatch(/<script|<link|src=|url\(/);
  }, 60_000);

  test('without --json it prints the table, then the JSON line last', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qy-sim-'));
    const { stdout } = await sim(['--trace', 'synthetic:poisson', '--jobs', '500', '--nodes', '50', '--policy', 'priority-fair,green-aware', '--out', out]);
    const lines = stdout.trim().split('\n');
    expect(lines.some((l) => l.startsWith('bounded slowdown mean'))).toBe(true);
    const result = headline.parse(JSON.parse(lines.at(-1)!));
    expect(result.trace).toBe('synthetic:poisson');
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  }, 60_000);

  test('--mode fill prints unallocatedGpuShare per policy over --repeat seeds, and writes the reports', async () => {
    const out = mkdtempSync(join(tmpdir(), 'qy-sim-'));
    const { stdout, stderr } = await sim(['--trace', 'test/fixtures/openb_pod_list_sample.csv', '--mode', 'fill', '--policy', 'binpack,fgd', '--seed', '4', '--repeat', '2', '--json', '--out', out]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const result = fillHeadline.parse(JSON.parse(lines[0]));
    expect(result).toMatchObject({ trace: 'openb_pod_list_sample.csv', mode: 'fill', seeds: [4, 5] });
    expect(Object.keys(result.policies)).toEqual(['binpack', 'fgd']);
    const { binpack, fgd } = result.policies;
    expect(fgd.unallocatedGpuShareBySeed).toHaveLength(2);
    expect(fgd.unallocatedGpuShare).toBeLessThan(binpack.unallocatedGpuShare);
    expect(binpack.unallocatedGpuShareMin).toBeLessThanOrEqual(binpack.unallocatedGpuShare);
    expect(stderr).toMatch(/unallocated GPU share \(mean\)/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.summaries[1].curve.failedGpuShare).toHaveLength(101);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/GPU demand arrived but not placed/);
    expect(html).not.toMatch(/<script|<link|src=|url\(/);
  }, 60_000);

  test('bad input is refused with a message and exit code 2', async () => {
    const refused = (args: string[]) => sim(args).then(() => expect.unreachable('should have failed'), (err: { code: number; stderr: string }) => err);
    const unknownPolicy = await refused(['--trace', 'synthetic:poisson', '--jobs', '10', '--policy', 'lottery']);
    expect(unknownPolicy.code).toBe(2);
    expect(unknownPolicy.stderr).toMatch(/unknown policy lottery; known: fifo, easy-backfill/);
    const noCluster = await refused(['--trace', 'test/sim/no-such.csv']);
    expect(noCluster.stderr).toMatch(/no-such.csv/);
    const badFormat = await refused(['--trace', 'README.md']);
    expect(badFormat.stderr).toMatch(/unknown trace format/);
    const badNumber = await refused(['--trace', 'synthetic:poisson', '--jobs', '-5']);
    expect(badNumber.stderr).toMatch(/--jobs must be a positive integer/);
    const badMode = await refused(['--trace', 'synthetic:poisson', '--mode', 'drain']);
    expect(badMode.stderr).toMatch(/--mode must be replay or fill/);
    const noGpus = await refused(['--trace', 'test/fixtures/lublin_256-first-1000.swf', '--mode', 'fill']);
    expect(noGpus.stderr).toMatch(/fill mode needs a cluster with GPUs/);
  }, 60_000);
});
