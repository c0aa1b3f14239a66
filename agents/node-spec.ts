import { cpus, totalmem } from 'node:os';
import { z } from 'zod';
import { loadDataFile, validateData } from '../src/files';
import { fromSetting } from '../src/lifecycle';
import { nodeSpecSchema, type NodeSpec } from '../src/protocol';
import { mixedCluster } from '../src/sim/synthetic';
import type { AgentConfig } from './config';
import { readGpus } from './collectors/gpu';

/** CPU and memory kept back for the operating system and the agent itself. */
const RESERVED_CPU_MILLIS = 500;
const RESERVED_MEM_BYTES = 512 * 1024 * 1024;

/** Short accelerator model names from nvidia-smi product names: "NVIDIA A800-SXM4-80GB" → "A800". */
export function gpuModelOf(productName: string): string {
  const m = /\b(A\d{2,4}|H\d{2,4}|B\d{2,4}|L\d{1,3}S?|V100|P100|T4|A10G?)\b/i.exec(productName);
  return (m ? m[1] : productName.replace(/^NVIDIA\s+/i, '').split(/[\s-]/)[0]).toUpperCase().slice(0, 32);
}

/**
 * The nodes this agent serves: those of QY_NODE_FILE when given (one spec, or a list of them: one agent
 * running real processes for several nodes, as the chaos campaign has it), else the one detected.
 */
export async function localNodeSpecs(config: AgentConfig): Promise<NodeSpec[]> {
  if (config.nodeFile) {
    const file = config.nodeFile;
    return fromSetting('QY_NODE_FILE', () => {
      const parsed = loadDataFile(file, z.unknown());
      return Array.isArray(parsed) ? validateData(parsed, z.array(nodeSpecSchema).min(1), file) : [validateData(parsed, nodeSpecSchema, file)];
    });
  }
  return [await localNodeSpec(config)];
}

/** The node this agent serves, detected from the machine. */
export async function localNodeSpec(config: AgentConfig): Promise<NodeSpec> {
  const gpus = await readGpus();
  const cpuMillis = cpus().length * 1000;
  const memBytes = totalmem();
  const labels = Object.fromEntries(
    config.labels
      .split(',')
      .map((kv) => kv.trim())
      .filter(Boolean)
      .map((kv) => kv.split('=') as [string, string]),
  );
  return nodeSpecSchema.parse({
    id: config.nodeId,
    pool: config.pool,
    zone: config.zone,
    rack: config.rack,
    labels,
    capacity: { cpuMillis, memBytes, gpus: gpus.length, gpuMemBytes: gpus[0]?.memTotalBytes ?? 0 },
    allocatable: {
      cpuMillis: Math.max(500, cpuMillis - RESERVED_CPU_MILLIS),
      memBytes: Math.max(256 * 1024 * 1024, memBytes - RESERVED_MEM_BYTES),
      gpus: gpus.length,
      gpuMemBytes: gpus[0]?.memTotalBytes ?? 0,
    },
    gpuModel: gpus[0] ? gpuModelOf(gpus[0].name) : undefined,
    securityLevel: config.securityLevel,
    ratedPowerWatts: config.ratedPowerWatts,
  });
}

/** `count` simulated nodes of the three pools (the synthetic mixed cluster), ids prefixed. */
export function simulatedNodeSpecs(count: number, prefix: string): NodeSpec[] {
  return mixedCluster(count).map((spec) => ({ ...spec, id: `${prefix}-${spec.id}` }));
}
