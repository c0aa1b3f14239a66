import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { z } from 'zod';

const run = promisify(execFile);

test('npm run eval:green compares green-blind and green-aware on a carbon trace and ends with the JSON line', async () => {
  // The pinned excerpt of the British grid's carbon intensity (2020-10-30 to 2020-11-01).
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/sim/eval-green.ts', '--carbon', 'test/fixtures/gb_ci-excerpt.csv', '--days', '1', '--nodes', '40', '--json'], { maxBuffer: 8 * 1024 * 1024 });
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const result = z
    .object({
      policy: z.literal('green'),
      carbonPerJobG: z.number().positive(),
      baselineCarbonPerJobG: z.number().positive(),
      carbonSavedPct: z.number(),
      greenShare: z.number().min(0).max(1),
      baselineGreenShare: z.number().min(0).max(1),
      meanDelayS: z.number().min(0),
      deadlineMisses: z.literal(0),
    })
    .passthrough()
    .parse(JSON.parse(lines[0]));
  // Shifting work in time toward cleaner hours does not emit more than running it at once.
  expect(result.carbonPerJobG).toBeLessThanOrEqual(result.baselineCarbonPerJobG);
  expect(result.meanDelayS).toBeGreaterThan(0);
}, 60_000);
