import { z } from 'zod';
import { poolSchema } from './common';
import { billingClassSchema, taskUsageSchema } from './usage';

/**
 * What `GET /v1/usage`, `/v1/bills/:tenant/:period` and `/v1/disclosure/:period` answer. src/billing builds
 * these documents; their shapes are defined here once, so the API client reads them with the same types.
 */

const count = z.number().int().min(0);

/** What a bill charges for: the four metered quantities of a segment. */
export const METERED_ITEMS = ['cpu', 'gpu', 'memory', 'energy'] as const;
export const meteredItemSchema = z.enum(METERED_ITEMS);
export type MeteredItem = (typeof METERED_ITEMS)[number];

/** Which segments to count: every field narrows; the window selects a segment by the start of its hour. */
export const usageFilterSchema = z.strictObject({
  tenant: z.string().min(1).optional(),
  pool: poolSchema.optional(),
  jobId: z.string().min(1).optional(),
  /** Inclusive, epoch ms. */
  fromMs: z.number().int().min(0).optional(),
  /** Exclusive, epoch ms. */
  toMs: z.number().int().min(0).optional(),
});
export type UsageFilter = z.infer<typeof usageFilterSchema>;

/** Metered use summed over a set of segments: exact integers first, display units after. */
export const usageFiguresSchema = z.object({
  /** Distinct jobs with at least one selected segment. */
  jobs: count,
  cpuMilliSeconds: count,
  gpuMilliSeconds: z.record(z.string(), count),
  memMiBSeconds: count,
  energyMilliWh: count,
  greenMilliWh: count,
  carbonMg: count,
  coreHours: z.number(),
  gpuHours: z.record(z.string(), z.number()),
  memGiBHours: z.number(),
  kWh: z.number(),
  greenKWh: z.number(),
  /** Green energy over energy; null when no energy was metered. */
  greenShare: z.number().nullable(),
  carbonKg: z.number(),
});
export type UsageFigures = z.infer<typeof usageFiguresSchema>;

/** GPU use of one model. */
export const gpuModelFiguresSchema = z.object({ jobs: count, gpuMilliSeconds: count, gpuHours: z.number() });
export type GpuModelFigures = z.infer<typeof gpuModelFiguresSchema>;

export const usageSummarySchema = z.object({
  filter: usageFilterSchema,
  total: usageFiguresSchema,
  byTenant: z.record(z.string(), usageFiguresSchema),
  byPool: z.partialRecord(poolSchema, usageFiguresSchema),
  byJob: z.record(z.string(), usageFiguresSchema),
  byGpuModel: z.record(z.string(), gpuModelFiguresSchema),
});
export type UsageSummary = z.infer<typeof usageSummarySchema>;

/** `GET /v1/usage`: a summary of a calendar period. */
export const usageReportSchema = usageSummarySchema.extend({ period: z.string(), interval: z.string() });
export type UsageReport = z.infer<typeof usageReportSchema>;

/** `GET /v1/usage/tasks`: the metered usage of each task of an attempt in a period, the records `/v1/usage` sums. */
export const usageTasksSchema = z.object({ period: z.string(), interval: z.string(), items: z.array(taskUsageSchema) });
export type UsageTasks = z.infer<typeof usageTasksSchema>;

/** Bills are in Chinese yuan (fen and milli-fen in the figures). */
export const currencySchema = z.literal('CNY');

/** A quantity in its integer base unit, and shown in the unit it is priced in (3 decimals, half-up). */
export const quantitySchema = z.object({ base: count, baseUnit: z.string(), value: z.string(), unit: z.string() });
export type Quantity = z.infer<typeof quantitySchema>;

export const billLineSchema = z.object({
  pool: poolSchema,
  item: meteredItemSchema,
  /** For `gpu` lines. */
  gpuModel: z.string().nullable(),
  /** The time-of-use band, for items whose price follows time of use in this pool. */
  band: z.string().nullable(),
  billingClass: billingClassSchema,
  quantity: quantitySchema,
  /** List price × band multiplier, capped by the ceiling: milli-fen per display unit, and as fen with 3 decimals. */
  unitPriceMilliFen: count,
  unitPriceFen: z.string(),
  multiplierBp: count,
  ceilingApplied: z.boolean(),
  chargeFen: count,
  discountBp: count,
  discountFen: count,
  amountFen: count,
});
export type BillLine = z.infer<typeof billLineSchema>;

export const billTotalsSchema = z.object({
  chargeFen: count,
  discountFen: count,
  amountFen: count,
  /** amountFen in yuan, `1234.56`. */
  amount: z.string(),
});
export type BillTotals = z.infer<typeof billTotalsSchema>;

export const billSchema = z.object({
  tenant: z.string(),
  /** `YYYY-MM` or `YYYY-MM-DD`, local time. */
  period: z.string(),
  currency: currencySchema,
  /** The local-time interval the bill covers, ISO 8601: `2026-11-01T00:00:00+08:00/2026-12-01T00:00:00+08:00`. */
  generatedFor: z.string(),
  fromMs: z.number().int(),
  toMs: z.number().int(),
  timeZoneOffsetMinutes: z.number().int(),
  lines: z.array(billLineSchema),
  totals: billTotalsSchema,
});
export type Bill = z.infer<typeof billSchema>;

/** What a pool offers: counted from the node registry by the caller. */
export const poolCapacitySchema = z.strictObject({
  nodes: count,
  cores: count,
  gpus: count,
  gpuModels: z.array(z.string().min(1).max(32)).default([]),
});
export type PoolCapacity = z.infer<typeof poolCapacitySchema>;

/** Jobs that ended in the period by outcome, e.g. `{ completed: 812, failed: 9, cancelled: 3 }`. */
export const jobsServedSchema = z.record(z.string().min(1).max(32), count);
export type JobsServed = z.infer<typeof jobsServedSchema>;

export const poolDisclosureSchema = z.object({
  pool: poolSchema,
  services: z.string(),
  capacity: poolCapacitySchema.nullable(),
  /** Capacity × the hours of the period. */
  offered: z.object({ coreHours: z.number(), gpuHours: z.number() }),
  usage: usageFiguresSchema,
  /** Share of the offered core- and GPU-hours that were used; null when nothing was offered. */
  utilisation: z.object({ cpu: z.number().nullable(), gpu: z.number().nullable() }),
  jobsServed: jobsServedSchema.nullable(),
});
export type PoolDisclosure = z.infer<typeof poolDisclosureSchema>;

export const tenantPoolUsageSchema = z.object({ tenant: z.string(), pool: poolSchema, usage: usageFiguresSchema });
export type TenantPoolUsage = z.infer<typeof tenantPoolUsageSchema>;

export const disclosureReportSchema = z.object({
  period: z.string(),
  fromMs: z.number().int(),
  toMs: z.number().int(),
  timeZoneOffsetMinutes: z.number().int(),
  /** ISO 8601 local-time interval of the period. */
  interval: z.string(),
  pools: z.array(poolDisclosureSchema),
  tenants: z.array(tenantPoolUsageSchema),
  /** All pools together: energy, green energy and share, carbon, and the metered totals. */
  total: usageFiguresSchema,
  /** Jobs served by outcome, summed over the pools; null when not reported. */
  jobsServed: jobsServedSchema.nullable(),
});
export type DisclosureReport = z.infer<typeof disclosureReportSchema>;
