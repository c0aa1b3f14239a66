import type { JobSpecInput } from '../../src/protocol';
import type { JobTemplate, RequestKind, Scenario, ScenarioFile } from '../scenarios';

/** A scenario with its cycles worked out (see templates.js). */
export interface ScenarioPlan {
  name: string;
  scenario: Scenario;
  templates: ScenarioFile['templates'];
  tenantConfigs: ScenarioFile['tenants'];
  /** The scenario's tenants in the order of its `tenants` (the order of K6_QY_TOKENS and --tokens). */
  tenantNames: string[];
  kinds: RequestKind[];
  submitsBefore: number[];
  templateCycle: string[];
  tenantCycle: string[];
}

/** What one arrival does. */
export interface Arrival {
  kind: RequestKind;
  tenant: string;
  /** The job, for submissions. */
  body?: JobSpecInput;
}

export function weightedCycle<K extends string>(weights: Partial<Record<K, number>>): K[];
export function jobBody(template: JobTemplate, name: string): JobSpecInput;
export function compileScenario(file: ScenarioFile, name: string): ScenarioPlan;
export function submitBody(plan: ScenarioPlan, ordinal: number): JobSpecInput;
export function arrivalAt(plan: ScenarioPlan, seq: number): Arrival;
export function prefillArrival(plan: ScenarioPlan, i: number): Arrival;
export function tokenOf(plan: ScenarioPlan, tenant: string, tokens: string[]): string;
