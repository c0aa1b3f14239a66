import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ClusterState, DEFAULT_POLICY, EasyShadow, backfillAllowed, byEndTime, easyReservation, placeJob, prepareJob, type ExpectedEnd, type SchedJob } from '../../src/core';
import { seededRng } from '../../src/sim/rng';
import { job, nodeSpec } from './fixtures';

/** A gang of whole super nodes; without a walltime (as a job that was submitted before walltimes were required). */
const gang = (id: string, tasks: number, walltimeSeconds: number | undefined): SchedJob => ({
  ...job({ id, pool: 'super', tasks, walltimeSeconds: walltimeSeconds ?? 1, resources: { cpuMillis: 1000, memBytes: 0 } }),
  walltimeMs: walltimeSeconds === undefined ? undefined : walltimeSeconds * 1000,
});

describe('EasyShadow', () => {
  test('gives the reservations of easyReservation and the backfill answers of backfillAllowed, computed from scratch, as jobs start and end (property)', () => {
    const outcomes = { reserved: 0, none: 0, allowed: 0, held: 0, besideOnly: 0 };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
        const rng = seededRng(seed);
        const cluster = new ClusterState();
        const easy = new EasyShadow(DEFAULT_POLICY, cluster, 'super');
        for (let i = 0; i < 12; i++) cluster.upsertNode(nodeSpec(`h${i}`, { pool: 'super', rack: `r${i % 3}` }));
        const ends = new Map<string, number>();
        let nowMs = 0;
        for (let step = 0; step < 60; step++) {
          nowMs += Math.floor(rng() * 20_000);
          // End some running jobs.
          for (const [id, endMs] of [...ends]) {
            if (endMs <= nowMs || rng() < 0.1) {
              cluster.release(id);
              easy.ended(id);
              ends.delete(id);
            }
          }
          // Start whatever fits of a few new jobs.
          for (let j = 0; j < 3; j++) {
            // Some jobs have no walltime: they never count as ending, and can leave the head with no reservation.
            const g = gang(`s${step}-${j}`, 1 + Math.floor(rng() * 4), rng() < 0.1 ? undefined : 10 + Math.floor(rng() * 200));
            const r = placeJob(cluster, prepareJob(g, DEFAULT_POLICY), DEFAULT_POLICY);
            if (!r.ok) continue;
            cluster.reserve(r.placement);
            const endMs = nowMs + (g.walltimeMs ?? Infinity);
            ends.set(g.id, endMs);
            easy.started(r.placement, endMs);
          }
          // The same head for a few steps at a time, so the shadow moves its boundary both ways.
          const block = Math.floor(step / 6);
          const head = prepareJob(gang(`head${block}`, 5 + ((block * 7 + seed) % 8), 100), DEFAULT_POLICY);
          if (placeJob(cluster, head, DEFAULT_POLICY).ok) continue;
          const sorted: ExpectedEnd[] = [...ends].map(([jobId, endMs]) => ({ jobId, endMs })).sort(byEndTime);
          const expected = easyReservation(cluster, head, DEFAULT_POLICY, sorted, nowMs);
          const actual = easy.reservation(head, nowMs);
          expect(actual?.startMs).toBe(expected?.startMs);
          expect(actual?.boundary).toEqual(expected?.boundary);
          outcomes[expected === null ? 'none' : 'reserved']++;
          if (!expected || !actual) continue;
          // ...and the same answer for a candidate that fits now.
          const candidate = gang(`c${step}`, 1 + Math.floor(rng() * 3), 10 + Math.floor(rng() * 400));
          const placed = placeJob(cluster, prepareJob(candidate, DEFAULT_POLICY), DEFAULT_POLICY);
          if (!placed.ok) continue;
          const endMs = nowMs + candidate.walltimeMs!;
          // The head's plan is one where it fits then (checked from scratch), and the answers agree with it.
          const then = cluster.clone();
          for (const e of sorted) if (byEndTime(e, actual.boundary) <= 0) then.release(e.jobId);
          expect(then.fits(actual.headPlacement)).toBe(true);
          const allowed = backfillAllowed(cluster, actual, sorted, placed.placement, endMs);
          expect(easy.allowed(actual, head, placed.placement, endMs)).toBe(allowed);
          outcomes[allowed ? 'allowed' : 'held']++;
          // A search within the room the reservation leaves finds an allowed placement whenever one exists
          // there, and only allowed ones: where the first placement found is held back, another may not be.
          const p = prepareJob(candidate, DEFAULT_POLICY);
          const room = easy.roomBeside(p, endMs);
          const beside = room ? placeJob(cluster, p, DEFAULT_POLICY, { room }) : placed;
          if (allowed) expect(beside.ok).toBe(true);
          if (beside.ok) expect(backfillAllowed(cluster, actual, sorted, beside.placement, endMs)).toBe(true);
          if (beside.ok && !allowed) outcomes.besideOnly++;
        }
      }),
      { numRuns: 80 },
    );
    // The runs covered every kind of answer. Placements only the search beside the head finds are rarer
    // (8 to 19 in 80 runs, from fast-check's random seeds): at least one.
    const { besideOnly, ...common } = outcomes;
    for (const [kind, n] of Object.entries(common)) expect(n, kind).toBeGreaterThan(10);
    expect(besideOnly).toBeGreaterThan(0);
  });
});
