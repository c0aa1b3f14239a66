import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { startNatsServer } from '../../harness/nats-server';
import { freePort } from '../../harness/ports';
import { spawnScheduler } from '../../harness/processes';
import { SchedulerClient } from '../../src/client';
import { writeTenantsFile } from '../../harness/tenants';
import { ConfigError, EXIT_CONFIG } from '../../src/lifecycle';
import { connectNats } from '../../src/store/nats';
import pino from 'pino';
import type { Logger } from '../../src/telemetry/logger';

/**
 * How the programs start, or say why they cannot: a setting the operator has to fix is one line on stderr
 * that names it, with exit status 2 (no stack trace to read through); a NATS that is not there yet is waited
 * for, and said so.
 */

const dir = mkdtempSync(join(tmpdir(), 'qy-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs a program's entry point as an operator would, with `env` on top of a clean environment; resolves when it exits. */
function run(script: string, args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir, QY_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Started after all: a program that should have refused to start is stopped, and the test sees status null.
    const guard = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.once('exit', (status) => {
      clearTimeout(guard);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('a program refused by its configuration says why in one line and exits 2', () => {
  test('scheduler and agent: a bad variable, a file that is missing, a file that is wrong', async () => {
    const notCarbon = join(dir, 'ng.csv');
    writeFileSync(notCarbon, 'from,to,forecast,actual,index\n2021-03-01T00:00Z,2021-03-01T00:30Z,210,205,moderate\n2021-03-01T00:30Z,2021-03-01T01:00Z,190,185,moderate\n');
    const badNode = join(dir, 'node.yaml');
    writeFileSync(badNode, 'id: n1\npool: general\ncapacity: { cpuMillis: lots, memBytes: 1073741824 }\n');
    // Nothing listens there: a program that got as far as connecting would wait, not exit.
    const nowhere = `nats://127.0.0.1:${await freePort()}`;
    const goodNode = join(dir, 'good-node.yaml');
    writeFileSync(goodNode, 'id: n1\npool: general\ncapacity: { cpuMillis: 1000, memBytes: 1073741824 }\n');
    const [port, tenants, carbon, node, state] = await Promise.all([
      run('scheduler/main.ts', [], { QY_HTTP_PORT: 'eighty', QY_NATS_URL: nowhere }),
      run('scheduler/main.ts', [], { QY_TENANTS_FILE: join(dir, 'missing.yaml'), QY_NATS_URL: nowhere }),
      run('scheduler/main.ts', [], { QY_TENANTS_FILE: 'configs/tenants.example.yaml', QY_CARBON_FILE: notCarbon, QY_NATS_URL: nowhere }),
      run('agents/main.ts', ['--node-file', badNode, '--state-dir', join(dir, 'agent')], { QY_NATS_URL: nowhere }),
      // A state folder that cannot be made: under a file.
      run('agents/main.ts', ['--node-file', goodNode, '--state-dir', join(goodNode, 'state')], { QY_NATS_URL: nowhere, QY_CGROUPS: 'off' }),
    ]);
    expect(port.stderr).toMatch(/^qy-scheduler: invalid configuration: QY_HTTP_PORT: .+\n$/);
    expect(tenants.stderr).toMatch(new RegExp(`^qy-scheduler: QY_TENANTS_FILE: ${join(dir, 'missing.yaml')}: no such file \\(.*start from configs/tenants.example.yaml\\)\\n$`));
    expect(carbon.stderr).toMatch(new RegExp(`^qy-scheduler: QY_CARBON_FILE: ${notCarbon}: expected carbon intensity .*name its column with QY_CARBON_COLUMN\\)\\n$`));
    expect(node.stderr).toMatch(new RegExp(`^qy-agent: QY_NODE_FILE: ${badNode}: .*cpuMillis.*\\n$`));
    expect(state.stderr).toMatch(new RegExp(`^qy-agent: QY_AGENT_STATE_DIR: ENOTDIR: not a directory, mkdir '${join(goodNode, 'state')}'\\n$`));
    for (const r of [port, tenants, carbon, node, state]) expect(r.status).toBe(EXIT_CONFIG);
  });
});

describe('qy-scheduler --check', () => {
  test('validates the variables and the files they name without connecting: 0 and a summary, or 2 and what to fix', async () => {
    const good = await run('scheduler/main.ts', ['--check'], { QY_TENANTS_FILE: 'configs/tenants.example.yaml', QY_PRICES_FILE: 'configs/prices.yaml' });
    expect(good.status).toBe(0);
    expect(good.stdout).toMatch(/^qy-scheduler: configuration OK \(2 tenants and 1 operator from configs\/tenants.example.yaml; NATS nats:\/\/127.0.0.1:4222; HTTP 127.0.0.1:8080\)\n$/);
    const headers = join(dir, 'carbon-headers');
    writeFileSync(headers, 'auth-token=abc\n');
    const [seed, token] = await Promise.all([
      run('scheduler/main.ts', ['--check'], { QY_TENANTS_FILE: 'configs/tenants.example.yaml', QY_NATS_NKEY_SEED_FILE: join(dir, 'no-seed.nk') }),
      run('scheduler/main.ts', ['--check'], { QY_TENANTS_FILE: 'configs/tenants.example.yaml', QY_CARBON_URL: 'https://api.electricitymaps.com/v3/carbon-intensity/latest?zone=DE', QY_CARBON_HEADERS_FILE: headers }),
    ]);
    expect(seed.status).toBe(EXIT_CONFIG);
    expect(seed.stderr).toMatch(/^qy-scheduler: QY_NATS_NKEY_SEED_FILE: ENOENT.*\n$/);
    expect(token.status).toBe(EXIT_CONFIG);
    expect(token.stderr).toBe(`qy-scheduler: QY_CARBON_HEADERS_FILE: ${headers}:1: expected a header "Name: value"\n`);
  });
});

describe('qy-agent --check', () => {
  test('prints the nodes it would register and what it can enforce, connecting to nothing and running nothing', async () => {
    const node = join(dir, 'check-node.yaml');
    writeFileSync(node, 'id: chk-1\npool: intelligent\nrack: r7\ncapacity: { cpuMillis: 16000, memBytes: 68719476736, gpus: 2 }\ngpuModel: A800\n');
    const r = await run('agents/main.ts', ['--check', '--node-file', node, '--state-dir', join(dir, 'check-state')], { QY_CGROUPS: 'off' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      `qy-agent: configuration OK (agent chk-1, 1 node, state in ${join(dir, 'check-state')}; NATS nats://127.0.0.1:4222)`,
      '  node chk-1: pool intelligent, 16 cores, 65536 MiB, 2 GPUs (A800) allocatable; zone default, rack r7',
      '  cgroups: none (turned off (QY_CGROUPS=off))',
      expect.stringMatching(/^ {2}isolation: (bwrap|none)/),
      '  fence: tasks stopped after 4000 ms without NATS, 5000 ms from SIGTERM to SIGKILL',
      '',
    ]);
  });
});

describe('an HTTP port that cannot be had', () => {
  test('is a configuration error naming QY_HTTP_HOST and QY_HTTP_PORT', async () => {
    const nats = await startNatsServer();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const r = await run('scheduler/main.ts', [], { QY_NATS_URL: nats.url, QY_HTTP_PORT: String(port), QY_TENANTS_FILE: 'configs/tenants.example.yaml' });
      expect(r.stderr).toMatch(new RegExp(`^qy-scheduler: QY_HTTP_HOST, QY_HTTP_PORT: cannot listen on 127.0.0.1:${port}: listen EADDRINUSE.*\\n$`));
      expect(r.status).toBe(EXIT_CONFIG);
    } finally {
      taken.close();
      await nats.dispose();
    }
  });
});

describe('SIGHUP', () => {
  test('puts the tenants file in force again: a token revoked there is refused, and the reload is audited', async () => {
    const nats = await startNatsServer();
    const file = join(dir, 'tenants-hup.yaml');
    const tokens = writeTenantsFile(file, { operators: ['ops'], tenants: [{ name: 'city-a' }] });
    // Polling off: only the signal can make the change known.
    const scheduler = await spawnScheduler(nats.url, { env: { QY_TENANTS_FILE: file, QY_TENANTS_RELOAD_MS: '0' } });
    const ops = new SchedulerClient({ url: scheduler.url, token: tokens.ops });
    const status = async (token: string) => (await fetch(`${scheduler.url}/v1/pools`, { headers: { authorization: `Bearer ${token}` } })).status;
    try {
      expect(await status(tokens['city-a'])).toBe(200);
      // The same tokens, city-a's now revoked in the file.
      const text = readFileSync(file, 'utf8').replace(/(label: city-a \(generated\))/, '$1\n        revoked: true');
      expect(text).toContain('revoked: true');
      writeFileSync(file, text);
      expect(await status(tokens['city-a'])).toBe(200);
      scheduler.child.kill('SIGHUP');
      await vi.waitFor(async () => expect(await status(tokens['city-a'])).toBe(401), { timeout: 30_000, interval: 100 });
      expect(await status(tokens.ops)).toBe(200);
      expect(await ops.auditRecords({ action: 'tenants.reload' })).toEqual([expect.objectContaining({ outcome: 'ok', details: { trigger: 'signal', tenants: 1, operators: 1 } })]);
    } finally {
      await ops.close();
      await scheduler.stop();
      await nats.dispose();
    }
  });
});

/** A logger whose lines the test reads. */
function capturingLogger(): { log: Logger; lines: { level: number; msg: string; [k: string]: unknown }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

describe('connecting to NATS', () => {
  test('a NATS that is not there yet is waited for, and the wait is logged until it comes', async () => {
    const port = await freePort();
    const { log, lines } = capturingLogger();
    const connecting = connectNats(`nats://127.0.0.1:${port}`, 'startup-test', log, { waitLogMs: 20 });
    await vi.waitFor(() => expect(lines.filter((l) => l.msg === 'NATS not reachable yet; still trying').length).toBeGreaterThanOrEqual(2), { timeout: 30_000, interval: 20 });
    expect(lines.find((l) => l.msg === 'NATS not reachable yet; still trying')).toMatchObject({ servers: [`nats://127.0.0.1:${port}`] });
    const server = await startNatsServer({ port });
    try {
      const nc = await connecting;
      const waits = lines.filter((l) => l.msg === 'NATS not reachable yet; still trying').length;
      expect(lines.at(-1)).toMatchObject({ msg: 'connected to NATS' });
      // Connected: no more waiting lines (twenty intervals later).
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(lines.filter((l) => l.msg === 'NATS not reachable yet; still trying').length).toBe(waits);
      await nc.close();
    } finally {
      await server.dispose();
    }
  });

  test('credentials the server refuses are a configuration error naming the settings, not a wait', async () => {
    const conf = join(dir, 'auth.conf');
    writeFileSync(conf, 'authorization { user: qy, password: right }\n');
    const server = await startNatsServer({ configFile: conf });
    try {
      const refused = connectNats(server.url, 'startup-test', undefined, { auth: { natsUser: 'qy', natsPassword: 'wrong' } });
      await expect(refused).rejects.toBeInstanceOf(ConfigError);
      await expect(refused).rejects.toThrow(/refused this process's credentials \(QY_NATS_USER and QY_NATS_PASSWORD, or QY_NATS_NKEY_SEED_FILE\): Authorization Violation/);
      const nc = await connectNats(server.url, 'startup-test', undefined, { auth: { natsUser: 'qy', natsPassword: 'right' } });
      await nc.close();
    } finally {
      await server.dispose();
    }
  });
});
