import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as highsModule from 'highs';
import type { Highs } from 'highs';
import { AdvcorrectError } from '../lib/errors.js';
import { packageRoot } from '../lib/native.js';
import { admmDefaults, solveAdmm, solveAdmmSync, solveCutPoolAdmm, type AdmmResult } from '../lib/qp/admm.js';
import { CutPool } from '../lib/qp/cut-pool.js';
import { writeLp } from '../lib/qp/lp-writer.js';
import { readQpsFile } from '../lib/qp/qps-reader.js';
import { kktResiduals } from '../lib/qp/residuals.js';
import type { CscMatrix, QuadraticProgram } from '../lib/qp/types.js';

// ---------- helpers (independent of the solver) ----------

/** A seeded xorshift64* generator of uniform numbers in [0, 1) (reproducible test data). */
function rng(seed: number): () => number {
  let state = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
  const mask = (1n << 64n) - 1n;
  return () => {
    state ^= state >> 12n;
    state ^= (state << 25n) & mask;
    state ^= state >> 27n;
    state &= mask;
    const out = (state * 0x2545f4914f6cdd1dn) & mask;
    return Number(out >> 11n) / 2 ** 53;
  };
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-300)) * Math.cos(2 * Math.PI * rand());
}

/** CSC from a dense row-major matrix (upper triangle only when asked). */
function csc(dense: number[][], nrows: number, ncols: number, upper = false): CscMatrix {
  const colPtr = new Int32Array(ncols + 1);
  const rows: number[] = [];
  const vals: number[] = [];
  for (let j = 0; j < ncols; j++) {
    for (let i = 0; i < nrows; i++) {
      if (upper && i > j) continue;
      if (dense[i][j] !== 0) {
        rows.push(i);
        vals.push(dense[i][j]);
      }
    }
    colPtr[j + 1] = rows.length;
  }
  return { nrows, ncols, colPtr, rowIndex: Int32Array.from(rows), values: Float64Array.from(vals) };
}

interface DenseQp {
  P: number[][];
  A: number[][];
  q: number[];
  l: number[];
  u: number[];
  lb: number[];
  ub: number[];
}

function toProblem(d: DenseQp, name = 'test'): QuadraticProgram {
  const n = d.q.length;
  const m = d.l.length;
  return {
    name,
    P: csc(d.P, n, n, true),
    q: Float64Array.from(d.q),
    r: 0,
    A: csc(d.A, m, n),
    rowLower: Float64Array.from(d.l),
    rowUpper: Float64Array.from(d.u),
    varLower: Float64Array.from(d.lb),
    varUpper: Float64Array.from(d.ub),
    varNames: Array.from({ length: n }, (_, j) => `x${j}`),
    rowNames: Array.from({ length: m }, (_, i) => `c${i}`),
    objectiveName: 'obj',
  };
}

type RowKinds = 'mixed' | 'equalities';

/** A random QP that is feasible (a known point satisfies every row and bound) and bounded (P ≻ 0). */
function randomQp(seed: number, n: number, m: number, density: number, bounds: boolean, kinds: RowKinds = 'mixed'): DenseQp {
  const rand = rng(seed);
  const M = Array.from({ length: n }, () => Array.from({ length: n }, () => (rand() < density ? gaussian(rand) : 0)));
  const P = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      let s = i === j ? 0.05 : 0;
      for (let k = 0; k < n; k++) s += M[k][i] * M[k][j];
      return s;
    }),
  );
  const A = Array.from({ length: m }, () => Array.from({ length: n }, () => (rand() < density ? gaussian(rand) : 0)));
  for (let i = 0; i < m; i++) if (A[i].every((v) => v === 0)) A[i][Math.floor(rand() * n)] = 1;
  const x0 = Array.from({ length: n }, () => gaussian(rand));
  const q = Array.from({ length: n }, () => 3 * gaussian(rand));
  const l: number[] = [];
  const u: number[] = [];
  for (let i = 0; i < m; i++) {
    const ax = A[i].reduce((s, a, j) => s + a * x0[j], 0);
    const kind = kinds === 'equalities' ? 0 : rand();
    if (kind < 0.2) {
      l.push(ax);
      u.push(ax);
    } else if (kind < 0.45) {
      l.push(ax - rand());
      u.push(ax + rand());
    } else if (kind < 0.7) {
      l.push(-Infinity);
      u.push(ax + rand());
    } else if (kind < 0.93) {
      l.push(ax - rand());
      u.push(Infinity);
    } else {
      l.push(-Infinity);
      u.push(Infinity);
    }
  }
  const lb = x0.map((x) => (bounds && rand() < 0.7 ? x - rand() : -Infinity));
  const ub = x0.map((x) => (bounds && rand() < 0.7 ? x + rand() : Infinity));
  return { P, A, q, l, u, lb, ub };
}

/** Residuals of (x, y, z) recomputed from the dense data. */
function denseResiduals(d: DenseQp, r: { x: Float64Array; y: Float64Array; z: Float64Array }): { primal: number; dual: number; objective: number } {
  const n = d.q.length;
  let primal = 0;
  d.A.forEach((row, i) => {
    const ax = row.reduce((s, a, j) => s + a * r.x[j], 0);
    primal = Math.max(primal, d.l[i] - ax, ax - d.u[i]);
  });
  for (let j = 0; j < n; j++) primal = Math.max(primal, d.lb[j] - r.x[j], r.x[j] - d.ub[j]);
  let dual = 0;
  let objective = 0;
  for (let j = 0; j < n; j++) {
    let g = d.q[j] + r.z[j];
    for (let k = 0; k < n; k++) g += d.P[j][k] * r.x[k];
    for (let i = 0; i < d.A.length; i++) g += d.A[i][j] * r.y[i];
    dual = Math.max(dual, Math.abs(g));
    let px = 0;
    for (let k = 0; k < n; k++) px += d.P[j][k] * r.x[k];
    objective += 0.5 * r.x[j] * px + d.q[j] * r.x[j];
  }
  return { primal, dual, objective };
}

type HighsLoader = () => Promise<Highs>;
async function highsLoader(): Promise<Highs> {
  const mod = highsModule as unknown as { default: HighsLoader | { default: HighsLoader } };
  const loader = typeof mod.default === 'function' ? mod.default : mod.default.default;
  return loader();
}

const marosDir = path.resolve(packageRoot, '..', 'shared', 'qp', 'maros-meszaros');

// ---------- tests ----------

describe('ADMM (OSQP algorithm)', function () {
  describe('random feasible QPs', function () {
    const shapes: Array<{ n: number; m: number; density: number; bounds: boolean; kinds?: RowKinds; label: string }> = [
      { n: 12, m: 6, density: 0.5, bounds: false, label: 'small dense, mixed rows' },
      { n: 30, m: 60, density: 0.15, bounds: true, label: 'm > n with bounds' },
      { n: 60, m: 25, density: 0.08, bounds: true, label: 'sparse with bounds' },
      { n: 40, m: 20, density: 0.2, bounds: false, kinds: 'equalities', label: 'equalities only' },
      { n: 5, m: 40, density: 0.9, bounds: true, label: 'many rows, tiny n' },
    ];
    for (const [index, s] of shapes.entries()) {
      for (const tolerance of [1e-4, 1e-8]) {
        it(`${s.label} (n=${s.n}, m=${s.m}) to tolerance ${tolerance}`, async function () {
          const d = randomQp(100 + index, s.n, s.m, s.density, s.bounds, s.kinds);
          const result = await solveAdmm(toProblem(d), { tolerance, relativeTolerance: 0, maxIterations: 50000 });
          assert.equal(result.status, 'solved');
          assert.equal(result.solver, 'admm');
          const res = denseResiduals(d, result);
          const scale = Math.max(1, ...d.q.map(Math.abs));
          assert.ok(res.primal <= tolerance * scale, `primal residual ${res.primal}`);
          assert.ok(res.dual <= tolerance * scale, `dual residual ${res.dual}`);
          assert.ok(Math.abs(res.objective - result.objective) <= 1e-9 * (1 + Math.abs(res.objective)));
          assert.ok(Math.abs(res.primal - result.residuals.primal) <= 1e-9 * (1 + res.primal));
        });
      }
    }

    it('agrees with HiGHS on small problems', async function () {
      const highs = await highsLoader();
      for (let seed = 0; seed < 4; seed++) {
        const d = randomQp(200 + seed, 8 + 3 * seed, 5 + 4 * seed, 0.4, seed % 2 === 0);
        const problem = toProblem(d, `h${seed}`);
        const ours = await solveAdmm(problem, { tolerance: 1e-9, relativeTolerance: 0, maxIterations: 50000 });
        assert.equal(ours.status, 'solved');
        const theirs = highs.solve(writeLp(problem)) as unknown as { Status: string; ObjectiveValue: number; Columns: Record<string, { Primal: number }> };
        assert.equal(theirs.Status, 'Optimal');
        assert.ok(
          Math.abs(ours.objective - theirs.ObjectiveValue) <= 1e-6 * (1 + Math.abs(theirs.ObjectiveValue)),
          `objective ${ours.objective} vs HiGHS ${theirs.ObjectiveValue}`,
        );
        // P ≻ 0: the minimiser is unique, so the points agree too.
        for (let j = 0; j < problem.q.length; j++) {
          const hx = theirs.Columns[problem.varNames[j]]?.Primal ?? 0;
          assert.ok(Math.abs(ours.x[j] - hx) <= 1e-4 * (1 + Math.abs(hx)), `x${j}: ${ours.x[j]} vs ${hx}`);
        }
      }
    });

    it('warm-started from its own solution converges in very few iterations', function () {
      const d = randomQp(300, 40, 30, 0.2, true);
      const problem = toProblem(d);
      const cold = solveAdmmSync(problem, { tolerance: 1e-6, relativeTolerance: 0, polish: false });
      assert.equal(cold.status, 'solved');
      const warm = solveAdmmSync(problem, { tolerance: 1e-6, relativeTolerance: 0, polish: false, warmStart: { x: cold.x, y: cold.y, z: cold.z } });
      assert.equal(warm.status, 'solved');
      assert.ok(warm.iterations <= admmDefaults().checkTermination, `warm start took ${warm.iterations} iterations (cold ${cold.iterations})`);
      assert.ok(warm.iterations < cold.iterations);
    });
  });

  describe('infeasibility and non-convexity', function () {
    it('detects a primal infeasible problem with a valid Farkas certificate', async function () {
      // x0 + x1 ≤ 1, x0 + x1 ≥ 3, 0 ≤ x0 ≤ 10.
      const d: DenseQp = { P: [[1, 0], [0, 1]], q: [0, 0], A: [[1, 1], [1, 1]], l: [-Infinity, 3], u: [1, Infinity], lb: [0, -Infinity], ub: [10, Infinity] };
      const r = await solveAdmm(toProblem(d));
      assert.equal(r.status, 'primal_infeasible');
      assert.ok(r.certificate && r.boundCertificate);
      const y = r.certificate!;
      const z = r.boundCertificate!;
      // Aᵀy + z ≈ 0 and the support function Σ u·y⁺ + l·y⁻ (rows and bounds) < 0.
      let support = 0;
      for (let i = 0; i < 2; i++) support += y[i] > 0 ? d.u[i] * y[i] : y[i] < 0 ? d.l[i] * y[i] : 0;
      for (let j = 0; j < 2; j++) support += z[j] > 0 ? d.ub[j] * z[j] : z[j] < 0 ? d.lb[j] * z[j] : 0;
      for (let j = 0; j < 2; j++) assert.ok(Math.abs(y[0] * d.A[0][j] + y[1] * d.A[1][j] + z[j]) < 1e-3);
      assert.ok(support < -1e-3, `support ${support}`);
    });

    it('detects a dual infeasible (unbounded) problem with a valid ray', async function () {
      // minimise x1² − x0 subject to x0 − x1 ≥ 0.
      const d: DenseQp = { P: [[0, 0], [0, 2]], q: [-1, 0], A: [[1, -1]], l: [0], u: [Infinity], lb: [-Infinity, -Infinity], ub: [Infinity, Infinity] };
      const r = await solveAdmm(toProblem(d));
      assert.equal(r.status, 'dual_infeasible');
      const ray = r.ray!;
      assert.ok(ray[0] * d.q[0] + ray[1] * d.q[1] < 0);
      assert.ok(Math.abs(2 * ray[1]) < 1e-3);
      assert.ok(ray[0] - ray[1] >= -1e-3);
    });

    it('reports a non-convex Hessian as status non_convex', async function () {
      for (const P of [[[1, 0], [0, -1]], [[1, 3], [3, 1]]]) {
        const d: DenseQp = { P, q: [1, 1], A: [[1, 1]], l: [-1], u: [1], lb: [-1, -1], ub: [1, 1] };
        const r = await solveAdmm(toProblem(d));
        assert.equal(r.status, 'non_convex');
      }
    });
  });

  describe('control', function () {
    it('stops promptly when the AbortSignal fires', async function () {
      const d = randomQp(400, 120, 80, 0.1, true);
      const problem = toProblem(d);
      const controller = new AbortController();
      const progress: number[] = [];
      // Abort from the first progress report (or after 3 s if none came).
      const fallback = setTimeout(() => controller.abort(), 3000);
      const r = await solveAdmm(problem, {
        tolerance: 1e-15, relativeTolerance: 0, polish: false, maxIterations: 100_000_000, adaptiveRho: false, rho: 1e-4,
        signal: controller.signal,
        onProgress: (p) => {
          progress.push(p.iteration);
          controller.abort();
        },
      });
      clearTimeout(fallback);
      assert.equal(r.status, 'aborted');
      assert.ok(progress.length > 0 && r.iterations >= progress[progress.length - 1]);
      await assert.rejects(solveAdmm(problem, { signal: controller.signal }), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_ABORTED');
    });

    it('returns iteration_limit_reached and time_limit_reached as statuses', async function () {
      const d = randomQp(500, 60, 40, 0.2, true);
      const r = await solveAdmm(toProblem(d), { tolerance: 1e-14, relativeTolerance: 0, polish: false, maxIterations: 30 });
      assert.equal(r.status, 'iteration_limit_reached');
      assert.equal(r.iterations, 30);
      const t = await solveAdmm(toProblem(d), { tolerance: 1e-15, relativeTolerance: 0, polish: false, maxIterations: 100_000_000, timeLimitMs: 30, adaptiveRho: false, rho: 1e-4 });
      assert.equal(t.status, 'time_limit_reached');
    });

    it('rejects bad input with exact TypeError/RangeError messages', function () {
      const good = toProblem(randomQp(600, 4, 3, 0.8, true));
      assert.throws(() => solveAdmmSync({ ...good, q: [1, 2, 3, 4] as unknown as Float64Array }), { name: 'TypeError', message: 'problem.q must be a Float64Array' });
      assert.throws(() => solveAdmmSync({ ...good, q: Float64Array.of(1, NaN, 0, 0) }), { name: 'RangeError', message: 'problem.q[1] must be finite, got NaN' });
      assert.throws(() => solveAdmmSync({ ...good, rowLower: Float64Array.of(5, 0, 0), rowUpper: Float64Array.of(1, 1, 1) }), {
        name: 'RangeError',
        message: 'row 0 has lower bound 5 > upper bound 1',
      });
      assert.throws(() => solveAdmmSync({ ...good, varLower: new Float64Array(3) }), { name: 'RangeError', message: 'problem.varLower and problem.varUpper must have length 4' });
      const badA = { ...good.A, rowIndex: Int32Array.from(good.A.rowIndex, () => 7) };
      assert.throws(() => solveAdmmSync({ ...good, A: badA }), { name: 'RangeError', message: /problem\.A\.rowIndex\[0\] = 7 is out of range \[0, 3\)/ });
      const lowerP: CscMatrix = { nrows: 4, ncols: 4, colPtr: Int32Array.of(0, 2, 2, 2, 2), rowIndex: Int32Array.of(0, 1), values: Float64Array.of(1, 1) };
      assert.throws(() => solveAdmmSync({ ...good, P: lowerP }), { name: 'RangeError', message: 'problem.P must hold the upper triangle only (entry (1, 0))' });
      assert.throws(() => solveAdmmSync(good, { alpha: 2 }), { name: 'RangeError', message: 'options.alpha must be in (0, 2), got 2' });
      assert.throws(() => solveAdmmSync(good, { maxIterations: 1.5 }), { name: 'RangeError', message: 'options.maxIterations must be a positive integer, got 1.5' });
      assert.throws(() => solveAdmmSync(good, { warmStart: { x: new Float64Array(2) } }), { name: 'RangeError', message: 'options.warmStart.x must have length 4, got 2' });
      assert.throws(() => solveAdmmSync(good, { rho: '1' as unknown as number }), { name: 'TypeError', message: 'options.rho must be a number' });
    });
  });

  describe('Maros–Mészáros (small problems)', function () {
    const names = ['HS21', 'HS35', 'HS118', 'HS51', 'DUALC1', 'QAFIRO', 'GENHS28', 'ZECEVIC2', 'TAME'];
    for (const name of names) {
      it(`${name} to 1e-6 matches the reference objective`, async function () {
        const file = path.join(marosDir, `${name}.qps.gz`);
        if (!existsSync(file)) {
          console.log(`skipped: ${file} is absent (the Maros–Mészáros set of ../shared)`);
          this.skip();
        }
        const index = JSON.parse(readFileSync(path.join(marosDir, 'index.json'), 'utf8')) as { problems: Array<{ name: string; objective_ref: number }> };
        const ref = index.problems.find((p) => p.name === name)!.objective_ref;
        const problem = await readQpsFile(file);
        const r: AdmmResult = await solveAdmm(problem, { tolerance: 1e-6, relativeTolerance: 0, maxIterations: 100000 });
        assert.equal(r.status, 'solved');
        const check = kktResiduals(problem, r.x, r.y, r.z);
        assert.ok(check.primal <= 1e-6 && check.dual <= 1e-6 && check.gap <= 1e-5, `residuals ${check.primal} ${check.dual}`);
        // The references carry about 8 significant digits.
        assert.ok(Math.abs(r.objective - ref) <= 1e-6 * Math.max(1, Math.abs(ref)), `objective ${r.objective} vs reference ${ref}`);
      });
    }
  });

  describe('cut pool form', function () {
    it('solves a cut pool QP and agrees with the general form', async function () {
      // The addon is built wherever the tests run (CI builds it first): a missing addon fails here.
      const n = 300;
      const m = 40;
      const rand = rng(700);
      const diagonal = Float64Array.from({ length: n }, () => 0.5 + rand());
      const w0 = Float64Array.from({ length: n }, () => gaussian(rand));
      const lower = new Float64Array(n).fill(-0.5);
      const upper = new Float64Array(n).fill(0.5);
      const pool = new CutPool(n, { diagonal, lower, upper });
      const rows: number[][] = [];
      const ub: number[] = [];
      for (let i = 0; i < m; i++) {
        const a = Array.from({ length: n }, () => (rand() < 0.3 ? gaussian(rand) : 0));
        rows.push(a);
        ub.push(-0.2 + 0.1 * rand()); // w = 0 is not feasible for most, a small w is
        pool.appendDense(Float64Array.from(a), -Infinity, ub[i]);
      }
      const r = await solveCutPoolAdmm(pool, w0, { tolerance: 1e-8, relativeTolerance: 0, maxIterations: 50000 });
      const P = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? diagonal[i] : 0)));
      const d: DenseQp = { P, q: Array.from(w0, (w, j) => -diagonal[j] * w), A: rows, l: ub.map(() => -Infinity), u: ub, lb: Array.from(lower), ub: Array.from(upper) };
      const general = await solveAdmm(toProblem(d), { tolerance: 1e-8, relativeTolerance: 0, maxIterations: 50000 });
      assert.equal(r.status, 'solved');
      assert.equal(general.status, 'solved');
      const res = denseResiduals(d, r);
      assert.ok(res.primal <= 1e-7 && res.dual <= 1e-7, `cut-form residuals ${res.primal} ${res.dual}`);
      const shift = w0.reduce((s, w, j) => s + 0.5 * diagonal[j] * w * w, 0);
      assert.ok(Math.abs(r.objective - (general.objective + shift)) <= 1e-6 * (1 + Math.abs(r.objective)));
      // The pool recorded the multipliers: the next solve starts from them.
      const again = await solveCutPoolAdmm(pool, w0, { tolerance: 1e-8, relativeTolerance: 0, polish: false });
      assert.equal(again.status, 'solved');
      const cold = await solveCutPoolAdmm(pool, w0, { tolerance: 1e-8, relativeTolerance: 0, polish: false, warmStart: false });
      assert.equal(cold.status, 'solved');
      assert.ok(again.iterations <= 2 * admmDefaults().checkTermination && again.iterations < cold.iterations, `warm ${again.iterations} vs cold ${cold.iterations}`);
    });
  });
});
