import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { columnIndex, loadDataFile, parseDataText, parseTable } from '../../src/files';
import { parseSeries } from '../../src/green';
import { parseGpuCsv, parseNodeList } from '../../src/sim/gpu-csv';

const dir = mkdtempSync(join(tmpdir(), 'qy-files-'));

describe('CSV tables', () => {
  test('quoted fields keep their commas, doubled quotes and line breaks', () => {
    const text = ['name,"note, with comma",n', '"a, b","say ""hi""",1', '"two', 'lines",x,2', ''].join('\r\n');
    expect(parseTable(text, 't.csv')).toEqual({
      header: ['name', 'note, with comma', 'n'],
      rows: [
        ['a, b', 'say "hi"', '1'],
        ['two\r\nlines', 'x', '2'],
      ],
    });
  });

  test('cells are trimmed, blank lines skipped, a byte-order mark dropped, short and long rows kept', () => {
    const text = '\uFEFFtime , value\n\n 00:00 , 0.5 \n01:00\n02:00,0.7,extra\n';
    expect(parseTable(text, 't.csv')).toEqual({ header: ['time', 'value'], rows: [['00:00', '0.5'], ['01:00'], ['02:00', '0.7', 'extra']] });
  });

  test('a quote left open is refused, naming the source; an empty file too', () => {
    expect(() => parseTable('a,b\n"open,1\n', 'bad.csv')).toThrow(/^bad\.csv: not valid CSV: /);
    expect(() => parseTable('\n\n', 'empty.csv')).toThrow(/^empty\.csv: empty file$/);
  });

  test('a header without a comma but with semicolons or tabs sets the delimiter; numbers there may have a decimal comma', () => {
    const semi = '\uFEFFDatum;CO2-Intensität (g/kWh);Hinweis\n2021-03-01 00:00;212,5;"a, b"\n2021-03-01 00:30;-3,25;1,234,5\n';
    expect(parseTable(semi, 'de.csv')).toEqual({ header: ['Datum', 'CO2-Intensität (g/kWh)', 'Hinweis'], rows: [['2021-03-01 00:00', '212.5', 'a, b'], ['2021-03-01 00:30', '-3.25', '1,234,5']] });
    expect(parseTable('time\tcarbon\n00:00\t1,5\n', 't.tsv')).toEqual({ header: ['time', 'carbon'], rows: [['00:00', '1.5']] });
    // A comma-separated file keeps its cells as written, semicolons and all.
    expect(parseTable('a,b\n"1,5",x;2\n', 'c.csv')).toEqual({ header: ['a', 'b'], rows: [['1,5', 'x;2']] });
    const series = parseSeries('Datum;CO2-Intensität\n2021-03-01 00:00;212,5\n2021-03-01 00:30;190,25\n', 'de.csv');
    expect(series.kind).toBe('carbon');
    expect(series.points.map((p) => p.value)).toEqual([212.5, 190.25]);
  });

  test('columns are found by any of their names, case-insensitively', () => {
    expect(columnIndex(['Time', 'Creation_Time', 'GPUs'], ['submit_time', 'creation_time'])).toBe(1);
    expect(columnIndex(['a'], ['b'])).toBe(-1);
  });

  test('a green signal with a quoted header and quoted values', () => {
    const series = parseSeries(['"Time","Carbon Intensity, gCO2/kWh"', '"2020-01-01 00:00:00","210"', '"2020-01-01 00:30:00","190"'].join('\n'), 'quoted.csv');
    expect(series.kind).toBe('carbon');
    expect(series.points.map((p) => p.value)).toEqual([210, 190]);
    expect(series.stepMs).toBe(30 * 60_000);
  });

  test('a GPU trace and a node list with quoted fields', () => {
    const trace = parseGpuCsv(['submit_time,duration,gpus,cpus,user,gpu_model', '0,60,1,8,"team, vision","A800|H20"', '5,30,0,2,"say ""x""",'].join('\n'), 'quoted.csv');
    expect(trace.jobs.map(({ job }) => [job.tenant, job.constraints.gpuModels])).toEqual([
      ['team, vision', ['A800', 'H20']],
      ['say "x"', []],
    ]);
    const nodes = parseNodeList(['sn,cpu_milli,memory_mib,gpu,model', '"n-1",96000,786432,8,"A100-SXM4-80GB"'].join('\n'));
    expect(nodes[0]).toMatchObject({ id: 'n-1', pool: 'intelligent', gpuModel: 'A100-SXM4-80GB' });
  });
});

describe('data files: YAML or JSON, validated by a zod schema', () => {
  const schema = z.strictObject({ name: z.string().min(1), replicas: z.number().int().min(1).default(1) });

  test('YAML and JSON files are read and their defaults applied', () => {
    writeFileSync(join(dir, 'a.yaml'), 'name: one\n');
    writeFileSync(join(dir, 'b.json'), '{"name": "two", "replicas": 3}');
    expect(loadDataFile(join(dir, 'a.yaml'), schema)).toEqual({ name: 'one', replicas: 1 });
    expect(loadDataFile(join(dir, 'b.json'), schema)).toEqual({ name: 'two', replicas: 3 });
  });

  test('errors name the file and every field that is wrong', () => {
    expect(() => parseDataText('name: ""\nreplicas: 0\nextra: 1\n', schema, 'c.yaml')).toThrow(/^c\.yaml: name: .*; replicas: .*; \(top\): Unrecognized key: "extra"$/);
    expect(() => parseDataText('name: [unclosed', schema, 'd.yaml')).toThrow(/^d\.yaml: not valid YAML: /);
    expect(() => parseDataText('{"name": ', schema, 'e.json')).toThrow(/^e\.json: not valid JSON: /);
    expect(() => loadDataFile(join(dir, 'missing.yaml'), schema)).toThrow(/missing\.yaml: cannot read: ENOENT/);
  });

  test('an empty document is an empty mapping', () => {
    expect(() => parseDataText('', schema, 'empty.yaml')).toThrow(/^empty\.yaml: name: /);
    expect(parseDataText('', z.object({ items: z.array(z.string()).default([]) }), 'empty.yaml')).toEqual({ items: [] });
  });
});
