/**
 * The steps of the correction loop one by one (lib/correction/{state,criteria,cuts,qp-step,
 * line-search,pareto-pool,stopping,rounds}.ts), each against the rule it implements, with small
 * synthetic inputs and a tiny linear model (logits linear in w, so a cut must be exact everywhere).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { ParameterView } from '../lib/models/parameters.js';
import { cleanLoss, predictLogits } from '../lib/models/index.js';
import { CutPool } from '../lib/qp/cut-pool.js';
import type { QpResult } from '../lib/qp/types.js';
import { resolveCorrectionOptions } from '../lib/correction/options.js';
import { defaultCutPool } from '../lib/correction/correct.js';
import { candidateEntry, evaluatePoint, measureStart, violationOf } from '../lib/correction/criteria.js';
import { LiveCuts, cutTargets, cutsOverLimit, linearise, longInactive, rebuildCuts, trackInactivity, type CutPoolLike } from '../lib/correction/cuts.js';
import { INFEASIBLE_RULE, snapshotQp, solveCutQp, usableStatus } from '../lib/correction/qp-step.js';
import { lineSearch, pointOnLine } from '../lib/correction/line-search.js';
import { bestFeasibleViolation, finalAnswer, selectAndOffer } from '../lib/correction/pareto-pool.js';
import { ParetoPool, dominates } from '../lib/correction/selection.js';
import { stopReason, correctAfter } from '../lib/correction/stopping.js';
import { appendExamples, endRound, restartRound, roundSummary } from '../lib/correction/rounds.js';
import { checkResumable, initialState, snapshotState, type CorrectionProblem, type CorrectionState, type CutRecord, type ParetoPoolEntry } from '../lib/correction/state.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function entry(id: number, violation: number, cleanLoss: number, eta: number, w = new Float64Array([id])): ParetoPoolEntry {
  return { id, round: 1, iteration: id, alpha: 0.5, violation, misclassified: violation > 0 ? 1 : 0, cleanLoss, distance: Math.abs(w[0]!), feasible: cleanLoss <= eta, w };
}

/** A cut pool that only records what it is given (the loop's bookkeeping against it). */
class RecordingPool implements CutPoolLike {
  rows: Array<{ id: number; kind: 'dense' | 'sparse'; type: string; lower: number; upper: number }> = [];
  private next = 1;
  get size(): number {
    return this.rows.length;
  }
  appendDense(row: Float32Array | Float64Array, lower: number, upper: number): number {
    this.rows.push({ id: this.next, kind: 'dense', type: row.constructor.name, lower, upper });
    return this.next++;
  }
  appendSparse(_index: Int32Array, value: Float32Array | Float64Array, lower: number, upper: number): number {
    this.rows.push({ id: this.next, kind: 'sparse', type: value.constructor.name, lower, upper });
    return this.next++;
  }
  remove(ids: Int32Array): number {
    const gone = new Set(ids);
    const before = this.rows.length;
    this.rows = this.rows.filter((r) => !gone.has(r.id));
    return before - this.rows.length;
  }
  async solve(): Promise<QpResult> {
    throw new Error('not used');
  }
}

// A tiny linear classifier on 2×2 images: logits = W·x + b, linear in the 15 parameters.
const INPUT = 4;
const CLASSES = 3;

function linearModel(): tfl.LayersModel {
  const model = tfl.sequential();
  model.add(tfl.layers.flatten({ inputShape: [2, 2, 1] }));
  model.add(tfl.layers.dense({ name: 'fc', units: CLASSES, kernelInitializer: tfl.initializers.randomNormal({ seed: 7 }), biasInitializer: 'zeros' }));
  return model;
}

function images(count: number, seed: number): Float32Array {
  const rand = lcg(seed);
  return Float32Array.from({ length: count * INPUT }, () => rand());
}

async function problemFor(model: tfl.LayersModel, optionsInput: object = {}): Promise<CorrectionProblem> {
  const view = new ParameterView(model);
  const w0 = view.read();
  const options = resolveCorrectionOptions({ delta: 1, cutSlack: 0.1, activeTolerance: 100, ...optionsInput });
  const cleanImages = images(6, 11);
  const cleanLabels = Uint8Array.from([0, 1, 2, 0, 1, 2]);
  const L0 = await cleanLoss(model, cleanImages, cleanLabels);
  return { work: model, view, n: view.size, w0, inputSize: INPUT, numClasses: CLASSES, options, cleanImages, cleanLabels, eta: 1.05 * L0, cleanLoss0: L0 };
}

describe('correction steps: state', () => {
  const options = resolveCorrectionOptions({ rounds: 1 });
  const fingerprint = { w0Sum: 3, cleanSum: 5, cleanCount: 2 };
  const w0 = Float64Array.from([1, 2]);
  const start = entry(0, 2, 0.4, 0.5, w0);
  const fresh = () =>
    initialState({ options, parameterCount: 2, layers: ['fc'], inputSize: 4, numClasses: 3, fingerprint, eta: 0.5, cleanLoss0: 0.4, w0, advImages: new Float32Array(8), advLabels: Uint8Array.from([1, 2]), start });

  it('a fresh state starts round 1 at w₀ with w₀ alone in the Pareto pool', () => {
    const s = fresh();
    assert.equal(s.round, 1);
    assert.equal(s.iteration, 0);
    assert.equal(s.w, w0);
    assert.deepEqual(s.pool, [start]);
    assert.deepEqual(s.candidates, [{ ...start, w: undefined }].map(({ w: _w, ...rest }) => rest));
    assert.equal(s.nextId, 1);
    assert.deepEqual(Array.from(s.advRounds), [1, 1]);
    assert.equal(s.correctAtRoundStart, 1, 'one of two examples misclassified at w₀');
    assert.equal(s.w0Norm, Math.sqrt(5));
  });

  it('a snapshot does not change when the loop goes on', () => {
    const s = fresh();
    s.cuts.push({ id: 1, point: 0, example: 0, cls: 2, inactive: 0 });
    const pool = new ParetoPool<ParetoPoolEntry>(s.pool);
    const snap = snapshotState(s, pool, 1234);
    s.cuts[0]!.inactive = 5;
    s.cuts.push({ id: 2, point: 1, example: -1, cls: -1, inactive: 0 });
    s.log.push({} as never);
    pool.offer(entry(3, 0, 0.1, 0.5));
    assert.equal(snap.cuts.length, 1);
    assert.equal(snap.cuts[0]!.inactive, 0);
    assert.equal(snap.log.length, 0);
    assert.deepEqual(snap.pool.map((p) => p.id), [0]);
    assert.equal(snap.elapsedMs, 1234);
  });

  it('a checkpoint of another model or other clean data is refused', () => {
    const s = fresh();
    assert.doesNotThrow(() => checkResumable(s, 2, 4, 3, fingerprint));
    assert.throws(() => checkResumable(s, 3, 4, 3, fingerprint), { code: 'ERR_MODEL', message: 'the checkpoint was made for a model with 2 parameters, 4 inputs and 3 classes; this one has 3, 4 and 3' });
    assert.throws(() => checkResumable(s, 2, 4, 3, { ...fingerprint, w0Sum: 4 }), { code: 'ERR_MODEL', message: 'the checkpoint was made from other model weights' });
    assert.throws(() => checkResumable(s, 2, 4, 3, { ...fingerprint, cleanCount: 3 }), { code: 'ERR_DATA', message: 'the checkpoint was made with other clean data' });
    assert.throws(() => checkResumable({ ...s, kind: 'x' as never }, 2, 4, 3, fingerprint), { code: 'ERR_PARSE' });
  });
});

describe('correction steps: criteria', () => {
  before(async () => {
    await initBackend();
  });

  it('violationOf sums the positive margin violations and counts the misclassified', () => {
    // Two examples, three classes. Example 0 (y 0): logits 2, 1, 0 → g = 1 − 2 + 1 = 0, 0 − 2 + 1 = −1: no violation, correct.
    // Example 1 (y 2): logits 0, 3, 1 → g = 0 − 1 + 1 = 0, 3 − 1 + 1 = 3: V 3, predicted 1.
    const v = violationOf(Float32Array.from([2, 1, 0, 0, 3, 1]), [0, 2], 2, 3, 1);
    assert.deepEqual(v, { sumViolation: 3, misclassified: 1, predictions: [0, 1] });
  });

  it('a candidate is feasible exactly when L ≤ η and carries its distance to w₀', () => {
    const w0 = Float64Array.from([0, 0]);
    const w = Float64Array.from([3, 4]);
    const a = candidateEntry({ violation: 1, misclassified: 1, cleanLoss: 0.5 }, w, w0, 0.5, { id: 7, round: 2, iteration: 3, alpha: 0.25 });
    assert.equal(a.feasible, true);
    assert.equal(a.distance, 5);
    assert.equal(a.segment, undefined);
    const b = candidateEntry({ violation: 1, misclassified: 1, cleanLoss: 0.5000001 }, w, w0, 0.5, { id: 8, round: 2, iteration: 0, alpha: 0.1, segment: true });
    assert.equal(b.feasible, false);
    assert.equal(b.segment, true);
  });

  it('evaluatePoint and measureStart measure V and L on the model at the given weights', async () => {
    const model = linearModel();
    const problem = await problemFor(model, { delta: 0.5, tau: 0.1 });
    const adv = images(3, 5);
    const labels = Uint8Array.from([2, 0, 1]);
    const w = problem.w0.map((v, i) => v + 0.01 * (i % 3));
    const at = await evaluatePoint(problem, adv, labels, w);
    const expected = violationOf(predictLogits(model, adv), labels, 3, CLASSES, 0.5);
    assert.equal(at.violation, expected.sumViolation);
    assert.equal(at.misclassified, expected.misclassified);
    assert.equal(at.cleanLoss, await cleanLoss(model, problem.cleanImages, problem.cleanLabels));
    const start = await measureStart(problem, adv, labels);
    assert.equal(start.eta, 1.1 * start.cleanLoss0);
    assert.equal(start.cleanLoss0, problem.cleanLoss0, 'w₀ is written back before measuring');
    assert.deepEqual(start.start.w, problem.w0);
    assert.equal(start.start.id, 0);
    assert.equal(start.start.distance, 0);
    model.dispose();
  });
});

describe('correction steps: cuts', () => {
  before(async () => {
    await initBackend();
  });

  it('on a model linear in w every cut is exact: aᵀw − upper = g(w) − target everywhere', async () => {
    const model = linearModel();
    const problem = await problemFor(model);
    const adv = images(4, 3);
    const labels = Uint8Array.from([0, 1, 2, 1]);
    const p = problem.w0.map((v, i) => v + 0.05 * Math.sin(i));
    const rows = await linearise(problem, p, adv, labels);
    const { deltaCut, etaCut } = cutTargets(problem);
    assert.equal(deltaCut, 1.1);
    assert.ok(Math.abs(etaCut - (problem.eta - 0.1 * (problem.eta - problem.cleanLoss0))) < 1e-15);
    // activeTolerance 100: every wrong class of every example gives a row, then the loss row.
    assert.equal(rows.length, 4 * 2 + 1);
    assert.deepEqual(rows.at(-1)!.example, -1);
    const rand = lcg(9);
    const q = p.map((v) => v + 0.2 * (rand() - 0.5));
    problem.view.write(q);
    const logits = predictLogits(model, adv);
    for (const row of rows.slice(0, -1)) {
      let dot = 0;
      row.index.forEach((j, t) => (dot += row.value[t]! * q[j]!));
      const g = logits[row.example * CLASSES + row.cls]! - logits[row.example * CLASSES + labels[row.example]!]! + deltaCut;
      assert.ok(Math.abs(dot - row.upper - g) < 1e-4, `example ${row.example} class ${row.cls}: ${dot - row.upper} vs ${g}`);
    }
    // The loss cut is exact at the point of linearisation: aᵀp − upper = L(p) − η'.
    const loss = rows.at(-1)!;
    let dot = 0;
    loss.index.forEach((j, t) => (dot += loss.value[t]! * p[j]!));
    problem.view.write(p);
    const Lp = await cleanLoss(model, problem.cleanImages, problem.cleanLabels);
    assert.ok(Math.abs(dot - loss.upper - (Lp - etaCut)) < 1e-6, `${dot - loss.upper} vs ${Lp - etaCut}`);
    model.dispose();
  });

  it('only examples within activeTolerance of the true δ give margin cuts', async () => {
    const model = linearModel();
    const problem = await problemFor(model, { activeTolerance: 0.01, cutSlack: 0 });
    const adv = images(6, 4);
    const labels = Uint8Array.from([0, 1, 2, 0, 1, 2]);
    const rows = await linearise(problem, problem.w0, adv, labels);
    problem.view.write(problem.w0);
    const logits = predictLogits(model, adv);
    let expected = 0;
    for (let i = 0; i < 6; i++) for (let j = 0; j < CLASSES; j++) if (j !== labels[i] && logits[i * 3 + j]! - logits[i * 3 + labels[i]!]! + 1 >= -0.01) expected++;
    assert.equal(rows.length - 1, expected);
    model.dispose();
  });

  it('LiveCuts stores dense rows when more than half is non-zero, keeps the records in the state, and removes by id', () => {
    const pool = new RecordingPool();
    const holder = { cuts: [] as CutRecord[] };
    const live = new LiveCuts(pool, 4, holder, true);
    live.append(0, { example: 0, cls: 1, index: Int32Array.from([0, 1, 3]), value: Float32Array.from([1, 2, 3]), upper: 1 });
    live.append(0, { example: 1, cls: 2, index: Int32Array.from([2]), value: Float32Array.from([5]), upper: 2 });
    live.append(1, { example: -1, cls: -1, index: Int32Array.from([0, 1, 2, 3]), value: Float64Array.from([1, 1, 1, 1]), upper: 3 });
    assert.deepEqual(pool.rows.map((r) => `${r.kind}:${r.type}`), ['dense:Float32Array', 'sparse:Float32Array', 'dense:Float64Array']);
    // Cuts are one-sided, bounds in the order (lower, upper).
    assert.deepEqual(pool.rows.map((r) => [r.lower, r.upper]), [[-Infinity, 1], [-Infinity, 2], [-Infinity, 3]]);
    assert.deepEqual(holder.cuts.map((c) => [c.id, c.point, c.example, c.cls]), [[1, 0, 0, 1], [2, 0, 1, 2], [3, 1, -1, -1]]);
    assert.equal(live.dumpRows!.size, 3);
    assert.equal(live.remove([2]), 1);
    assert.deepEqual(holder.cuts.map((c) => c.id), [1, 3]);
    assert.deepEqual(pool.rows.map((r) => r.id), [1, 3]);
    assert.equal(live.dumpRows!.has(2), false);
    assert.equal(live.remove([]), 0);
  });

  it('over maxCuts the longest-inactive cuts go first, then the oldest, never the newest point', () => {
    const cuts: CutRecord[] = [
      { id: 1, point: 0, example: 0, cls: 1, inactive: 0 },
      { id: 2, point: 0, example: -1, cls: -1, inactive: 3 },
      { id: 3, point: 1, example: 0, cls: 1, inactive: 1 },
      { id: 4, point: 1, example: -1, cls: -1, inactive: 0 },
      { id: 5, point: 2, example: 0, cls: 1, inactive: 9 },
    ];
    assert.deepEqual(cutsOverLimit(cuts, 5, 2), []);
    assert.deepEqual(cutsOverLimit(cuts, 3, 2), [2, 3]);
    assert.deepEqual(cutsOverLimit(cuts, 1, 2), [2, 3, 1, 4]);
    assert.deepEqual(longInactive(cuts, 1, 2), [2, 3]);
    assert.equal(trackInactivity(cuts, Float64Array.from([0, 1, 0, 2, 0])), true);
    assert.deepEqual(cuts.map((c) => c.inactive), [1, 0, 2, 0, 10]);
    assert.equal(trackInactivity(cuts, Float64Array.from([0])), false, 'multipliers that do not fit change nothing');
    assert.deepEqual(cuts.map((c) => c.inactive), [1, 0, 2, 0, 10]);
  });

  it('rebuildCuts re-makes exactly the stored cuts, in their order, with their inactivity counts', async () => {
    const model = linearModel();
    const problem = await problemFor(model);
    const adv = images(4, 3);
    const labels = Uint8Array.from([0, 1, 2, 1]);
    const points = [problem.w0, problem.w0.map((v) => v * 1.01)];
    const original = new RecordingPool();
    const first = { cuts: [] as CutRecord[] };
    const live = new LiveCuts(original, problem.n, first);
    for (const [k, p] of points.entries()) for (const row of await linearise(problem, p, adv, labels)) live.append(k, row);
    // Keep a few, out of creation order, as a checkpoint would after removals.
    const stored = [first.cuts[7]!, first.cuts[2]!, first.cuts[10]!].map((c, i) => ({ ...c, inactive: i }));
    const rebuiltPool = new RecordingPool();
    const holder = { cuts: [] as CutRecord[] };
    await rebuildCuts(problem, new LiveCuts(rebuiltPool, problem.n, holder), stored, points, [4, 4], adv, labels, () => undefined);
    assert.deepEqual(holder.cuts.map(({ point, example, cls, inactive }) => ({ point, example, cls, inactive })), stored.map(({ point, example, cls, inactive }) => ({ point, example, cls, inactive })));
    const uppersBefore = stored.map((c) => original.rows.find((r) => r.id === c.id)!.upper);
    assert.deepEqual(rebuiltPool.rows.map((r) => r.upper), uppersBefore);
    model.dispose();
  });
});

describe('correction steps: the QP step', () => {
  it('ŵ satisfies every cut to tolerance and is the projection of w₀ (native cut pool)', async () => {
    const n = 6;
    const rand = lcg(21);
    const w0 = Float64Array.from({ length: n }, () => rand() - 0.5);
    const holder = { cuts: [] as CutRecord[] };
    const cutPool = new CutPool(n, {});
    try {
      const live = new LiveCuts(cutPool, n, holder, true);
      for (let r = 0; r < 4; r++) {
        const value = Float64Array.from({ length: n }, () => rand() - 0.5);
        live.append(0, { example: r, cls: 1, index: Int32Array.from({ length: n }, (_, j) => j), value, upper: -0.3 });
      }
      const seen: number[] = [];
      const step = await solveCutQp(live, w0, { solver: 'dual', qpTolerance: 1e-9, qpTimeLimitMs: 0 }, { round: 1, iteration: 1 }, { checkAbort: () => undefined, onQp: (qp) => void seen.push(qp.attempt) });
      assert.equal(step.qp.status, 'solved');
      assert.equal(step.usable, true);
      assert.equal(step.removed, 0);
      assert.deepEqual(seen, [0]);
      // Primal feasibility and stationarity: ŵ = w₀ − Σ yᵢ aᵢ with y ≥ 0.
      const stationary = Float64Array.from(w0);
      for (const [i, c] of holder.cuts.entries()) {
        const row = live.dumpRows!.get(c.id)!;
        let dot = 0;
        row.index.forEach((j, t) => (dot += row.value[t]! * step.qp.x[j]!));
        assert.ok(dot <= row.upper + 1e-7, `cut ${i}: ${dot} ≤ ${row.upper}`);
        assert.ok(step.qp.y[i]! >= 0);
        row.index.forEach((j, t) => (stationary[j] -= step.qp.y[i]! * row.value[t]!));
      }
      stationary.forEach((v, j) => assert.ok(Math.abs(v - step.qp.x[j]!) < 1e-7));
    } finally {
      cutPool.dispose();
    }
  });

  it('an infeasible QP drops the certificate support, logs the event and solves again', async () => {
    const holder = { cuts: [] as CutRecord[] };
    let solves = 0;
    const fake: CutPoolLike = Object.assign(new RecordingPool(), {
      solve: async (): Promise<QpResult> => {
        solves++;
        const m = holder.cuts.length;
        const base = { solver: 'dual' as const, x: new Float64Array(2), y: new Float64Array(m), z: new Float64Array(2), objective: 0, iterations: 1, solveTimeMs: 2, residuals: { primal: 0, dual: 0, gap: 0 } };
        return solves === 1 ? { ...base, status: 'primal_infeasible', certificate: Float64Array.from([0, 1, 0.5]) } : { ...base, status: 'solved' };
      },
    });
    const live = new LiveCuts(fake, 2, holder);
    for (const example of [0, 1, -1]) live.append(0, { example, cls: example < 0 ? -1 : 1, index: Int32Array.from([0]), value: Float32Array.from([1]), upper: 0 });
    const events: unknown[] = [];
    const step = await solveCutQp(live, new Float64Array(2), { solver: 'dual', qpTolerance: 1e-9, qpTimeLimitMs: 0 }, { round: 2, iteration: 3 }, { checkAbort: () => undefined, onInfeasible: (e) => events.push(e) });
    assert.equal(solves, 2);
    assert.equal(step.qp.status, 'solved');
    assert.equal(step.removed, 1, 'the margin cut in the support; the loss cut stays');
    assert.deepEqual(holder.cuts.map((c) => c.example), [0, -1]);
    assert.deepEqual(step.infeasible, [{ round: 2, iteration: 3, dropped: 1, rule: INFEASIBLE_RULE }]);
    assert.deepEqual(events, step.infeasible);
    assert.equal(step.solveTimeMs, 4);
  });

  it('usable statuses and the CSR snapshot of the cuts', () => {
    for (const s of ['solved', 'solved_inaccurate', 'iteration_limit_reached', 'time_limit_reached']) assert.equal(usableStatus(s), true, s);
    for (const s of ['primal_infeasible', 'dual_infeasible', 'aborted', 'numerical_error']) assert.equal(usableStatus(s), false, s);
    const rows = new Map([
      [4, { index: Int32Array.from([1, 3]), value: Float64Array.from([0.5, 2]), upper: 1 }],
      [9, { index: Int32Array.from([0]), value: Float64Array.from([-1]), upper: 7 }],
    ]);
    const cuts: CutRecord[] = [9, 4].map((id) => ({ id, point: 0, example: 0, cls: 1, inactive: 0 }));
    const snap = snapshotQp(cuts, rows, new Float64Array(4), 1, 2, 0);
    assert.deepEqual(Array.from(snap.rowPtr), [0, 1, 3]);
    assert.deepEqual(Array.from(snap.colIndex), [0, 1, 3]);
    assert.deepEqual(Array.from(snap.values), [-1, 0.5, 2]);
    assert.deepEqual(Array.from(snap.rowUpper), [7, 1]);
    assert.deepEqual(Array.from(snap.rowLower), [-Infinity, -Infinity]);
  });
});

describe('correction steps: line search', () => {
  it('evaluates w_k + α(ŵ − w_k) for each α in order, every point on the segment', async () => {
    const from = Float64Array.from([1, -2, 0.5]);
    const to = Float64Array.from([3, 2, 0.5]);
    const seen: number[][] = [];
    const points = await lineSearch(from, to, [0.25, 0.5, 1], async (w) => {
      seen.push(Array.from(w));
      return { violation: w[0]!, misclassified: 0, cleanLoss: w[1]!, predictions: [] };
    });
    assert.deepEqual(points.map((p) => p.t), [0.25, 0.5, 1]);
    assert.deepEqual(seen, [[1.5, -1, 0.5], [2, 0, 0.5], [3, 2, 0.5]]);
    for (const p of points) {
      assert.equal(p.at.violation, p.w[0]);
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(p.w[i]! - (from[i]! + p.t * (to[i]! - from[i]!))) < 1e-15);
    }
    assert.deepEqual(Array.from(pointOnLine(from, to, 0)), Array.from(from));
  });

  it('stops before the next point when aborted', async () => {
    let calls = 0;
    await assert.rejects(
      lineSearch(new Float64Array(1), new Float64Array(1), [0.5, 1], async () => ({ violation: 0, misclassified: 0, cleanLoss: 0, predictions: [] }), () => {
        if (calls++ === 1) throw new Error('aborted');
      }),
      /aborted/,
    );
    assert.equal(calls, 2);
  });
});

describe('correction steps: the Pareto pool', () => {
  it('after every offer the pool holds only non-dominated points and the next iterate is a candidate', () => {
    const rand = lcg(5);
    const eta = 0.6;
    const pool = new ParetoPool<ParetoPoolEntry>([entry(0, 5, 0.5, eta)]);
    let id = 1;
    for (let k = 0; k < 30; k++) {
      const candidates = Array.from({ length: 4 }, () => entry(id++, Math.floor(rand() * 6), Math.round(rand() * 10) / 10, eta));
      const { next, entered } = selectAndOffer(candidates, pool, 0.5, eta);
      assert.ok(next && candidates.includes(next));
      if (candidates.some((c) => c.feasible)) assert.equal(next.feasible, true, 'a loss-feasible candidate is taken when there is one');
      // A candidate may enter and be displaced by a later one of the same batch.
      const stayed = candidates.filter((c) => pool.has(c.id)).length;
      assert.ok(entered >= stayed && entered <= candidates.length, `${entered} entered, ${stayed} stayed`);
      for (const a of pool.members) for (const b of pool.members) assert.ok(!dominates(a, b), `${a.id} dominates ${b.id}`);
    }
    assert.deepEqual(selectAndOffer([], pool, 0.5, eta), { next: undefined, entered: 0 });
    assert.equal(bestFeasibleViolation([entry(1, 3, 0.7, eta), entry(2, 4, 0.5, eta)]), 4);
    assert.equal(bestFeasibleViolation([entry(1, 3, 0.7, eta)]), Infinity);
  });

  it('the final answer is chosen from a non-dominated front that holds the closing segment', async () => {
    const eta = 1;
    const w0 = Float64Array.from([0, 0]);
    // Along the segment w₀ → w* = (1, 0): V = 1 − t falls, L = 0.5 + 0.4t² rises (so every segment point is Pareto-optimal).
    const evaluate = async (w: Float64Array) => ({ violation: 1 - w[0]!, misclassified: 0, cleanLoss: 0.5 + 0.4 * w[0]! ** 2, predictions: [] });
    const star = entry(5, 0, 0.9, eta, Float64Array.from([1, 0]));
    const members = [entry(0, 1, 0.5, eta, w0), star];
    const answers = [];
    for (const omega of [0, 0.5, 1]) {
      const answer = await finalAnswer(members, { w0, eta, omega, segmentPoints: 3, round: 1, firstId: 10, evaluate });
      assert.deepEqual(answer.segment.map((s) => s.alpha), [0, 0.25, 0.5, 0.75]);
      assert.deepEqual(answer.segment.map((s) => s.id), [10, 11, 12, 13]);
      assert.ok(answer.segment.every((s) => s.segment === true && s.iteration === 0));
      assert.ok(answer.front.includes(answer.chosen));
      for (const a of answer.front) for (const b of answer.front) assert.ok(!dominates(a, b));
      answers.push(answer.chosen);
    }
    assert.equal(answers[2], star, 'ω = 1: the least violation');
    assert.equal(answers[0]!.cleanLoss, 0.5, 'ω = 0: the least clean loss');
    assert.ok(answers[1]!.violation > 0 && answers[1]!.violation < 1, 'ω = 0.5: a segment point in between');
    const none = await finalAnswer([entry(0, 1, 0.5, eta, w0)], { w0, eta, omega: 1, segmentPoints: 3, round: 1, firstId: 1, evaluate });
    assert.deepEqual(none.segment, [], 'w* = w₀: no segment');
  });
});

describe('correction steps: stopping and rounds', () => {
  const base = { step: 1, normWk: 1, stall: 0, patience: 3, iteration: 1, maxIterations: 5, violation: 'sum' as const };
  const at = (violation: number, misclassified: number, feasible: boolean) => ({ violation, misclassified, feasible });

  it('stop reasons in their documented order', () => {
    assert.equal(stopReason({ ...base, next: undefined }), 'no_progress');
    assert.equal(stopReason({ ...base, next: at(0, 0, true), stall: 9, iteration: 5 }), 'converged');
    assert.equal(stopReason({ ...base, next: at(0.1, 0, true) }), undefined, 'V > 0 with the sum measure is not converged');
    assert.equal(stopReason({ ...base, next: at(0.1, 0, true), violation: 'fraction' }), 'converged');
    assert.equal(stopReason({ ...base, next: at(0, 0, false) }), undefined, 'loss-infeasible is not converged');
    assert.equal(stopReason({ ...base, next: at(1, 1, true), step: 1e-13 }), 'no_progress');
    assert.equal(stopReason({ ...base, next: at(1, 1, true), stall: 3 }), 'stalled');
    assert.equal(stopReason({ ...base, next: at(1, 1, true), iteration: 5 }), 'max_iterations');
    assert.equal(correctAfter(10, 3), 7);
    assert.equal(correctAfter(10, -1), 10);
  });

  it('a new round appends X̃, restarts the Pareto pool from the current point; a finished round moves on or ends', () => {
    const eta = 0.5;
    const w0 = Float64Array.from([0, 0]);
    const state = {
      advImages: Float32Array.from([1, 2]),
      advLabels: Uint8Array.from([3]),
      advRounds: Uint8Array.from([1]),
      round: 2,
      iteration: 4,
      roundStarted: false,
      done: false,
      w: Float64Array.from([3, 4]),
      eta,
      nextId: 20,
      pool: [] as ParetoPoolEntry[],
      candidates: [] as unknown[],
      bestViolation: 0,
      stall: 2,
      correctAtRoundStart: 0,
      rounds: [] as unknown[],
    } as unknown as CorrectionState;
    Object.assign(state, appendExamples(state, { images: Float32Array.from([5, 6, 7, 8]), labels: [4, 5] }, 2));
    assert.deepEqual(Array.from(state.advImages), [1, 2, 5, 6, 7, 8]);
    assert.deepEqual(Array.from(state.advLabels), [3, 4, 5]);
    assert.deepEqual(Array.from(state.advRounds), [1, 2, 2]);
    const pool = new ParetoPool<ParetoPoolEntry>([entry(1, 0, 0.1, eta)]);
    restartRound(state, pool, { violation: 2, misclassified: 1, cleanLoss: 0.4, predictions: [] }, w0);
    assert.deepEqual(pool.members.map((p) => [p.id, p.round, p.distance, p.violation]), [[20, 2, 5, 2]]);
    assert.equal(state.nextId, 21);
    assert.deepEqual(state.pool, pool.members);
    assert.equal(state.bestViolation, 2);
    assert.equal(state.correctAtRoundStart, 2);
    assert.equal(state.iteration, 0);
    assert.equal(state.stall, 0);
    assert.equal(state.roundStarted, true);
    const summary = roundSummary(state, 'stalled', 3);
    assert.deepEqual(summary, { round: 2, adversarialCount: 3, iterations: 0, stopReason: 'stalled', correctedBefore: 2, correctedAfter: 3 });
    const next = Float64Array.from([9, 9]);
    endRound(state, summary, 3, next);
    assert.equal(state.round, 3);
    assert.equal(state.roundStarted, false);
    assert.equal(state.w, next);
    endRound(state, summary, 3, undefined);
    assert.equal(state.done, true);
    assert.equal(state.round, 3);
    assert.equal(state.rounds.length, 2);
  });
});

describe('correction steps: the default cut pool', function () {
  this.timeout(30_000);
  it('is the native CutPool, and an addon that cannot be loaded is ERR_NATIVE_MISSING, not a fallback', async () => {
    const pool = defaultCutPool(3);
    assert.ok(pool instanceof CutPool);
    pool.dispose?.();
    // In a child process (the addon is loaded once per process): point the loader at a file that is no addon.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-noaddon-'));
    try {
      const fakeAddon = path.join(dir, 'advcorrect_native.node');
      await fs.writeFile(fakeAddon, 'not an addon');
      const correctJs = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'lib', 'correction', 'correct.js');
      const script = `import(${JSON.stringify(correctJs)}).then((m) => { try { m.defaultCutPool(3); console.log('created'); } catch (e) { console.log(e.name, e.code); } });`;
      const output = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ADVCORRECT_NATIVE_PATH: fakeAddon }, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', () => resolve(out.trim()));
      });
      assert.equal(output, 'AdvcorrectError ERR_NATIVE_MISSING');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
