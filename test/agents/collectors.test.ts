import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseNvidiaSmi } from '../../agents/collectors/gpu';
import { constantGreen, fileGreen } from '../../agents/collectors/green';
import { modelPowerWatts } from '../../agents/collectors/power';
import { gpuModelOf } from '../../agents/node-spec';

const dir = mkdtempSync(join(tmpdir(), 'qy-collectors-'));

describe('collectors', () => {
  test('nvidia-smi CSV becomes GPU readings; [N/A] power is unknown', () => {
    const out = '0, NVIDIA A800-SXM4-80GB, 81920, 1024, 37, 212.50\n1, NVIDIA A800-SXM4-80GB, 81920, 0, 0, [N/A]\n';
    expect(parseNvidiaSmi(out)).toEqual([
      { index: 0, name: 'NVIDIA A800-SXM4-80GB', memTotalBytes: 81920 * 1024 ** 2, memUsedBytes: 1024 * 1024 ** 2, util: 0.37, powerWatts: 212.5 },
      { index: 1, name: 'NVIDIA A800-SXM4-80GB', memTotalBytes: 81920 * 1024 ** 2, memUsedBytes: 0, util: 0, powerWatts: undefined },
    ]);
    expect(parseNvidiaSmi('')).toEqual([]);
  });

  const models = [
    ['NVIDIA A800-SXM4-80GB', 'A800'],
    ['NVIDIA H20', 'H20'],
    ['Tesla V100-SXM2-32GB', 'V100'],
    ['NVIDIA L40S', 'L40S'],
  ] as const;
  for (const [product, model] of models) test(`GPU model of "${product}" is ${model}`, () => expect(gpuModelOf(product)).toBe(model));

  test('the power model runs from idle draw to rated power', () => {
    expect(modelPowerWatts(1000, 0)).toBe(350);
    expect(modelPowerWatts(1000, 1)).toBe(1000);
    expect(modelPowerWatts(1000, 0.5)).toBe(675);
    expect(modelPowerWatts(1000, 7)).toBe(1000);
  });

  test('a constant green share', () => expect(constantGreen(0.4).shareAt(123)).toBe(0.4));

  test('a daily green profile: the last point at or before the time of day', () => {
    const file = join(dir, 'daily.csv');
    writeFileSync(file, 'time,share\n00:00,10\n06:30,0.55\n18:00,30\n');
    const green = fileGreen(file);
    const at = (h: number, m: number) => Date.UTC(2026, 0, 2, h, m);
    expect(green.shareAt(at(3, 0))).toBe(0.1);
    expect(green.shareAt(at(6, 30))).toBe(0.55);
    expect(green.shareAt(at(23, 59))).toBe(0.3);
  });

  test('a recorded green series loops when the clock is outside it', () => {
    const file = join(dir, 'series.csv');
    writeFileSync(file, 'Time,Share\n2021-01-01 00:00:00,0.2\n2021-01-01 00:30:00,0.4\n');
    const green = fileGreen(file);
    const start = Date.UTC(2021, 0, 1);
    expect(green.shareAt(start + 10 * 60_000)).toBe(0.2);
    expect(green.shareAt(start + 40 * 60_000)).toBe(0.4);
    expect(green.shareAt(start + 70 * 60_000)).toBe(0.2);
  });

  test('a bad green file is refused with the reason', () => {
    const file = join(dir, 'bad.csv');
    writeFileSync(file, 'time,share\nnoon,abc\n');
    expect(() => fileGreen(file)).toThrow(/bad share abc/);
  });
});
