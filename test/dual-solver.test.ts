import assert from 'node:assert/strict';
import * as highsModule from 'highs';
import type { Highs } from 'highs';
import { CutPool } from '../lib/qp/cut-pool.js';
import { AdvcorrectError } from '../lib/errors.js';
import {
  buildPool,
  certificateCheck,
  independentResiduals,
  randomCutQp,
  toLpString,
  appendRow,
  normal,
  rng,
  type RandomCutQpShape,
} from './helpers/random-qp.js';

type HighsLoader = () => Promise<Highs>;
async function loadHighs(): Promise<Highs> {
  const mod = highsModule as unknown as { default: HighsLoader | { default: HighsLoader } };
  const loader = typeof mod.default === 'function' ? mod.default : mod.default.default;
  return loader();
}

const KKT_TOL = 1e-8;

describe('dual active-set solver', function () {
  describe('KKT conditions on random problems', function () {
    const shapes: Array<RandomCutQpShape & { label: string }> = [
      { label: 'small dense', n: 30, m: 12, density: 1, seed: 1 },
      { label: 'sparse 20 %', n: 300, m: 120, density: 0.2, seed: 2 },
      { label: 'm > n', n: 40, m: 90, density: 0.6, seed: 3 },
      { label: 'all cuts active', n: 200, m: 40, density: 0.5, seed: 4, active: 'all' },
      { label: 'no cut active', n: 50, m: 30, density: 0.3, seed: 5, active: 'none' },
      { label: 'active variable bounds', n: 60, m: 30, density: 0.4, seed: 6, bounds: true },
      { label: 'active bounds on very sparse rows', n: 400, m: 80, density: 0.05, seed: 11, bounds: true },
      // Over 64 non-zeros per row and variable: columns of A are read from the rows, not a CSC copy.
      { label: 'active bounds on long dense rows', n: 5000, m: 100, density: 1, seed: 12, bounds: true },
      { label: 'equality and ranged rows', n: 80, m: 50, density: 0.3, seed: 7, ranges: true },
      { label: 'duplicates, scaled copies, near-parallel and zero rows', n: 70, m: 60, density: 0.8, seed: 8, degenerate: true },
      { label: 'everything at once, m > n', n: 50, m: 70, density: 0.3, seed: 9, bounds: true, ranges: true, degenerate: true },
      { label: 'single variable', n: 1, m: 5, density: 1, seed: 10, bounds: true },
    ];
    for (const shape of shapes) {
      it(`${shape.label} (n=${shape.n}, m=${shape.m})`, async function () {
        const qp = randomCutQp(shape);
        const pool = buildPool(qp);
        const result = await pool.solve(qp.w0);
        assert.equal(result.status, 'solved');
        assert.equal(result.solver, 'dual');
        const res = independentResiduals(qp, result);
        assert.ok(res.primal < KKT_TOL, `primal residual ${res.primal}`);
        assert.ok(res.dual < KKT_TOL * Math.max(1, ...Array.from(result.y, Math.abs)), `stationarity ${res.dual}`);
        assert.ok(res.gap < KKT_TOL, `complementarity ${res.gap}`);
        assert.equal(res.signErrors, 0);
        assert.ok(Math.abs(res.objective - result.objective) <= 1e-9 * (1 + res.objective));
        // The native residuals agree with ours.
        assert.ok(result.residuals.primal < KKT_TOL && result.residuals.dual < 1e-6);
        if (shape.active === 'none') {
          assert.deepEqual(Array.from(result.x), Array.from(qp.w0));
          assert.ok(result.y.every((v) => v === 0));
        }
        if (shape.active === 'all') assert.ok(result.y.every((v) => v > 0), 'every cut carries a positive multiplier');
        if (shape.bounds && !shape.ranges && shape.n > 1) assert.ok((result.activeBounds ?? 0) > 0, 'some variable bound is active');
      });
    }
  });

  describe('agreement with HiGHS', function () {
    let highs: Highs;
    before(async function () {
      highs = await loadHighs();
    });
    const shapes: RandomCutQpShape[] = [
      { n: 12, m: 8, density: 1, seed: 21 },
      { n: 25, m: 30, density: 0.4, seed: 22, bounds: true },
      { n: 30, m: 20, density: 0.5, seed: 23, ranges: true },
      { n: 20, m: 15, density: 0.7, seed: 24, bounds: true, ranges: true, degenerate: true },
    ];
    for (const shape of shapes) {
      it(`same optimum as HiGHS (n=${shape.n}, m=${shape.m}${shape.bounds ? ', bounds' : ''}${shape.ranges ? ', ranges' : ''}${shape.degenerate ? ', degenerate' : ''})`, async function () {
        const qp = randomCutQp(shape);
        const pool = buildPool(qp);
        const ours = await pool.solve(qp.w0);
        assert.equal(ours.status, 'solved');
        const { lp, constant } = toLpString(qp);
        const theirs = highs.solve(lp) as unknown as { Status: string; ObjectiveValue: number; Columns: Record<string, { Primal: number }> };
        assert.equal(theirs.Status, 'Optimal');
        const highsObjective = theirs.ObjectiveValue + constant;
        assert.ok(
          Math.abs(ours.objective - highsObjective) <= 1e-6 * (1 + Math.abs(highsObjective)),
          `objective ${ours.objective} vs HiGHS ${highsObjective}`,
        );
        // Strictly convex: the minimiser is unique.
        for (let j = 0; j < qp.n; j++) {
          const x = theirs.Columns[`x${j}`]?.Primal ?? 0;
          assert.ok(Math.abs(ours.x[j] - x) <= 1e-4 * (1 + Math.abs(x)), `x${j}: ${ours.x[j]} vs HiGHS ${x}`);
        }
      });
    }
  });

  describe('infeasibility', function () {
    for (const shape of [
      { n: 20, m: 10, density: 0.5, seed: 31, infeasible: true },
      { n: 40, m: 50, density: 0.3, seed: 32, infeasible: true, bounds: true, ranges: true },
    ] as RandomCutQpShape[]) {
      it(`returns primal_infeasible with a valid Farkas certificate (n=${shape.n}, m=${shape.m})`, async function () {
        const qp = randomCutQp(shape);
        const result = await buildPool(qp).solve(qp.w0);
        assert.equal(result.status, 'primal_infeasible');
        assert.ok(result.certificate, 'certificate present');
        const check = certificateCheck(qp, result.certificate!, result.boundCertificate);
        assert.ok(check.residual < 1e-8, `‖Aᵀy + z‖ = ${check.residual}`);
        assert.ok(check.support < -1e-6, `support ${check.support} must be negative`);
      });
    }

    it('proves infeasibility from variable bounds alone', async function () {
      const pool = new CutPool(3, { lower: new Float64Array([0, 0, 0]), upper: new Float64Array([1, 1, 1]) });
      pool.appendDense(new Float64Array([1, 1, 1]), 4, Infinity); // x1 + x2 + x3 ≥ 4 > 3
      const result = await pool.solve(new Float64Array(3));
      assert.equal(result.status, 'primal_infeasible');
      const y = result.certificate!;
      const z = result.boundCertificate!;
      // Aᵀy + z = 0 and support < 0.
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(y[0] + z[j]) < 1e-12);
      let support = y[0] > 0 ? Infinity : 4 * y[0];
      for (let j = 0; j < 3; j++) support += z[j] > 0 ? z[j] * 1 : 0;
      assert.ok(support < 0, `support ${support}`);
    });

    it('reports a violated zero row as infeasible', async function () {
      const pool = new CutPool(4);
      pool.appendSparse(new Int32Array(0), new Float64Array(0), -Infinity, -1);
      const result = await pool.solve(new Float64Array(4));
      assert.equal(result.status, 'primal_infeasible');
      assert.equal(result.certificate![0], 1);
    });
  });

  describe('warm start', function () {
    it('reproduces the cold solution after appending cuts, with fewer iterations', async function () {
      const qp = randomCutQp({ n: 400, m: 130, density: 0.3, seed: 41 });
      const first = qp.rows.slice(0, 120);
      const pool = buildPool(qp, first);
      const r1 = await pool.solve(qp.w0);
      assert.equal(r1.status, 'solved');
      for (const row of qp.rows.slice(120)) appendRow(pool, row, qp.n);
      const warm = await pool.solve(qp.w0);
      const cold = await buildPool(qp).solve(qp.w0, { warmStart: false });
      assert.equal(warm.status, 'solved');
      assert.equal(cold.status, 'solved');
      let diff = 0;
      for (let j = 0; j < qp.n; j++) diff = Math.max(diff, Math.abs(warm.x[j] - cold.x[j]));
      assert.ok(diff < 1e-8, `warm and cold differ by ${diff}`);
      assert.ok(warm.iterations < cold.iterations, `warm ${warm.iterations} vs cold ${cold.iterations} iterations`);
      const res = independentResiduals(qp, warm);
      assert.ok(res.primal < KKT_TOL && res.gap < KKT_TOL);
    });

    it('survives removal of working-set rows between solves', async function () {
      const qp = randomCutQp({ n: 100, m: 60, density: 0.5, seed: 42, bounds: true });
      const pool = buildPool(qp);
      const r1 = await pool.solve(qp.w0);
      const ids = pool.ids();
      const drop = ids.filter((_, i) => r1.y[i] !== 0).slice(0, 5);
      assert.equal(pool.remove(drop), drop.length);
      const keptRows = qp.rows.filter((_, i) => !drop.includes(ids[i]));
      const warm = await pool.solve(qp.w0);
      const cold = await buildPool(qp, keptRows).solve(qp.w0);
      let diff = 0;
      for (let j = 0; j < qp.n; j++) diff = Math.max(diff, Math.abs(warm.x[j] - cold.x[j]));
      assert.ok(diff < 1e-8, `differ by ${diff}`);
      assert.ok(independentResiduals(qp, warm, keptRows).primal < KKT_TOL);
    });
  });

  describe('limits, cancellation and progress', function () {
    // A solve of a second or more: 1500 cuts over 2500 variables, many of them active.
    let big: { pool: CutPool; w0: Float64Array } | undefined;
    function bigPool(): { pool: CutPool; w0: Float64Array } {
      if (!big) {
        const qp = randomCutQp({ n: 2500, m: 1500, density: 0.1, seed: 51 });
        const pool = buildPool(qp);
        pool.gram(); // build G up front so the solve itself is what is timed
        big = { pool, w0: qp.w0 };
      }
      return big;
    }

    it('stops promptly on abort, resolves with status aborted, and keeps the event loop free', async function () {
      const { pool, w0 } = bigPool();
      // The abort comes from a macrotask that the first progress report schedules: it can only
      // run if the event loop is free while the solve goes on, and it lands after the solve started.
      const controller = new AbortController();
      const progress: number[] = [];
      const result = await pool.solve(w0, {
        signal: controller.signal,
        warmStart: false,
        progressIntervalMs: 0,
        onProgress: (p) => {
          if (progress.length === 0) setImmediate(() => controller.abort());
          progress.push(p.iteration);
        },
      });
      assert.equal(result.status, 'aborted');
      assert.ok(progress.length >= 1, 'progress was reported during the solve');
      assert.ok(result.iterations >= progress[progress.length - 1], `stopped at ${result.iterations}, last report ${progress[progress.length - 1]}`);
      // The pool is usable again.
      const done = await pool.solve(w0, { maxIterations: 3 });
      assert.equal(done.status, 'iteration_limit_reached');
      // It stopped part way: a full solve takes more iterations.
      const full = await pool.solve(w0, { warmStart: false });
      assert.equal(full.status, 'solved');
      assert.ok(result.iterations < full.iterations, `aborted after ${result.iterations} of the ${full.iterations} iterations a full solve takes`);
    });

    it('rejects with ERR_ABORTED when the signal is already aborted', async function () {
      const pool = new CutPool(2);
      pool.appendDense(new Float64Array([1, 1]), -Infinity, 0);
      await assert.rejects(pool.solve(new Float64Array([1, 1]), { signal: AbortSignal.abort() }), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_ABORTED');
    });

    it('honours maxIterations and timeLimitMs, and reports progress', async function () {
      const { pool, w0 } = bigPool();
      const limited = await pool.solve(w0, { maxIterations: 10, warmStart: false });
      assert.equal(limited.status, 'iteration_limit_reached');
      assert.equal(limited.iterations, 10);
      const progress: number[] = [];
      const full = await pool.solve(w0, { warmStart: false, progressIntervalMs: 0, onProgress: (p) => progress.push(p.iteration) });
      assert.equal(full.status, 'solved');
      // A limit of a tenth of the full solve's own time (not a fixed number of ms) stops it part way.
      const timed = await pool.solve(w0, { timeLimitMs: full.solveTimeMs / 10, warmStart: false });
      assert.equal(timed.status, 'time_limit_reached');
      assert.ok(timed.iterations < full.iterations, `time-limited ${timed.iterations} vs full ${full.iterations} iterations`);
      assert.ok(progress.length >= 10, `progress was reported ${progress.length} times`);
      assert.ok(progress.every((v, i) => i === 0 || v >= progress[i - 1]));
    });

    it('the time limit and abort also stop folding new rows into G, and the next solve goes on from there', async function () {
      this.timeout(60000);
      // 300 long float32 rows: G is built in two panels, with a stop check between them.
      const n = 50000;
      const rand = rng(77);
      const rows = Array.from({ length: 300 }, () => Float32Array.from({ length: n }, () => normal(rand)));
      const w0 = Float64Array.from({ length: n }, () => 0.1 * normal(rand));
      const build = (): CutPool => {
        const pool = new CutPool(n);
        for (const row of rows) {
          let activity = 0;
          for (let j = 0; j < n; j++) activity += row[j] * w0[j];
          pool.appendDense(row, -Infinity, activity - 1);
        }
        return pool;
      };
      const interrupted = build();
      const timed = await interrupted.solve(w0, { timeLimitMs: 1 });
      assert.equal(timed.status, 'time_limit_reached');
      assert.equal(timed.iterations, 0);
      assert.deepEqual(timed.x, w0);
      assert.ok(timed.residuals.primal > 0.5, 'every cut is violated at w0');
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 1);
      const aborted = await interrupted.solve(w0, { signal: controller.signal });
      assert.equal(aborted.status, 'aborted');
      // Resumed, the fold ends with the same G and solution as an uninterrupted pool.
      const resumed = await interrupted.solve(w0);
      const reference = build();
      const direct = await reference.solve(w0);
      assert.equal(resumed.status, 'solved');
      assert.equal(direct.status, 'solved');
      assert.ok(Math.abs(resumed.objective - direct.objective) <= 1e-12 * direct.objective);
      const g1 = interrupted.gram();
      const g2 = reference.gram();
      let diff = 0;
      for (let k = 0; k < g1.length; k++) diff = Math.max(diff, Math.abs(g1[k] - g2[k]));
      assert.ok(diff <= 1e-9 * g2[0], `G differs by ${diff}`);
      interrupted.dispose();
      reference.dispose();
    });

    it('rejects appends while a solve runs, and a throwing progress callback ends the solve', async function () {
      const { pool, w0 } = bigPool();
      const running = pool.solve(w0, { warmStart: false });
      assert.throws(() => pool.appendDense(new Float64Array(pool.n), -Infinity, 1), /in use by a running solve/);
      await running;
      await assert.rejects(
        pool.solve(w0, { warmStart: false, progressIntervalMs: 0, onProgress: () => { throw new Error('stop here'); } }),
        /stop here/,
      );
    });

    it("solver 'admm' (lib/qp/admm.ts) agrees with the dual solver to its tolerance", async function () {
      const qp = randomCutQp({ n: 60, m: 40, density: 0.4, seed: 53, bounds: true });
      const pool = buildPool(qp);
      const dual = await pool.solve(qp.w0);
      const admm = await pool.solve(qp.w0, { solver: 'admm', tolerance: 1e-6, warmStart: false });
      assert.equal(admm.solver, 'admm');
      assert.equal(admm.status, 'solved');
      assert.ok(Math.abs(admm.objective - dual.objective) <= 1e-4 * (1 + dual.objective), `${admm.objective} vs ${dual.objective}`);
    });

    it('solveSync gives the same answer as solve', async function () {
      const qp = randomCutQp({ n: 50, m: 40, density: 0.5, seed: 52, ranges: true });
      const a = await buildPool(qp).solve(qp.w0);
      const b = buildPool(qp).solveSync(qp.w0);
      assert.deepEqual(Array.from(a.x), Array.from(b.x));
      assert.equal(b.status, 'solved');
    });
  });
});
