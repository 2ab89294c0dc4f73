// The names renamed in 0.2.0 (docs/api.md, "Changed in 0.2.0"): an old option key or CLI flag is
// refused with one message naming the new one, never silently ignored; files written by 0.1.0
// (run.json, checkpoints) still load; cut-pool bounds go in the order (lower, upper).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rejectRenamedKeys } from '../lib/errors.js';
import { CutPool } from '../lib/qp/cut-pool.js';
import { solveAdmm, solveCutPoolAdmm } from '../lib/qp/admm.js';
import { readQps } from '../lib/qp/qps-reader.js';
import { solveQp } from '../lib/qp/solve.js';
import { resolveCorrectionOptions, upgradeSavedOptions, type CorrectionOptionsInput } from '../lib/correction/options.js';
import { readRunSettings } from '../lib/runs/index.js';
import { runCli } from './helpers/cli.js';

const PROBLEM = 'NAME t\nROWS\n N obj\n G c\nCOLUMNS\n x obj 1 c 1\nRHS\n rhs c 1\nQUADOBJ\n x x 2\nENDATA\n';

/** Options as an old caller would write them (the types no longer allow these keys). */
const old = <T>(options: Record<string, unknown>): T => options as T;

describe('0.2.0 renames: old option keys throw a TypeError naming the new key', () => {
  it('rejectRenamedKeys names old and new key, and ignores keys left undefined', () => {
    assert.throws(() => rejectRenamedKeys({ eps: 1e-6 }, { eps: 'tolerance' }), { name: 'TypeError', message: 'options.eps was renamed options.tolerance' });
    assert.throws(() => rejectRenamedKeys({ a: 1 }, { a: 'b' }, 'settings'), { name: 'TypeError', message: 'settings.a was renamed settings.b' });
    assert.doesNotThrow(() => rejectRenamedKeys({ eps: undefined, tolerance: 1 }, { eps: 'tolerance' }));
  });

  it('solveQp: eps → tolerance, epsRel → relativeTolerance', async () => {
    const problem = readQps(PROBLEM);
    await assert.rejects(solveQp(problem, old({ eps: 1e-6 })), { name: 'TypeError', message: 'options.eps was renamed options.tolerance' });
    await assert.rejects(solveQp(problem, old({ solver: 'admm', epsRel: 1e-6 })), { name: 'TypeError', message: 'options.epsRel was renamed options.relativeTolerance' });
    const solved = await solveQp(problem, { tolerance: 1e-9, relativeTolerance: 0 });
    assert.equal(solved.status, 'solved');
    assert.ok(Math.abs(solved.x[0] - 1) < 1e-6, `x = ${solved.x[0]}`);
  });

  it('solveAdmm and the cut pool ADMM: epsAbs, epsRel, epsPrimalInfeasible, epsDualInfeasible', async () => {
    const problem = readQps(PROBLEM);
    const renamed: Array<[string, string]> = [
      ['epsAbs', 'tolerance'],
      ['epsRel', 'relativeTolerance'],
      ['epsPrimalInfeasible', 'primalInfeasibilityTolerance'],
      ['epsDualInfeasible', 'dualInfeasibilityTolerance'],
    ];
    const pool = new CutPool(1);
    try {
      pool.appendDense(Float64Array.of(1), 1, Infinity);
      for (const [from, to] of renamed) {
        const message = `options.${from} was renamed options.${to}`;
        await assert.rejects(solveAdmm(problem, old({ [from]: 1e-6 })), { name: 'TypeError', message });
        await assert.rejects(solveCutPoolAdmm(pool, new Float64Array(1), old({ [from]: 1e-6 })), { name: 'TypeError', message });
      }
      const r = await solveAdmm(problem, { tolerance: 1e-8, relativeTolerance: 0 });
      assert.equal(r.status, 'solved');
    } finally {
      pool.dispose();
    }
  });

  it('CutPool.solve and solveSync: eps → tolerance', async () => {
    const pool = new CutPool(2);
    try {
      pool.appendDense(Float64Array.of(1, 1), 2, Infinity);
      const message = 'options.eps was renamed options.tolerance';
      await assert.rejects(pool.solve(new Float64Array(2), old({ eps: 1e-6 })), { name: 'TypeError', message });
      assert.throws(() => pool.solveSync(new Float64Array(2), old({ solver: 'admm', eps: 1e-6 })), { name: 'TypeError', message });
      const r = await pool.solve(new Float64Array(2), { tolerance: 1e-10 });
      assert.equal(r.status, 'solved');
      assert.ok(Math.abs(r.x[0] - 1) < 1e-12 && Math.abs(r.x[1] - 1) < 1e-12, `x = ${[...r.x]}`);
    } finally {
      pool.dispose();
    }
  });

  it('correction options: qpEps → qpTolerance', () => {
    assert.throws(() => resolveCorrectionOptions(old<CorrectionOptionsInput>({ qpEps: 1e-6 })), { name: 'TypeError', message: 'options.qpEps was renamed options.qpTolerance' });
    assert.equal(resolveCorrectionOptions({ qpTolerance: 1e-6 }).qpTolerance, 1e-6);
  });
});

describe('0.2.0 renames: files written by 0.1.0 still load', () => {
  it('upgradeSavedOptions renames qpEps in place and keeps every other key and its order', () => {
    const saved = { delta: 3, solver: 'dual', qpEps: 1e-7, qpTimeLimitMs: 0 };
    const upgraded = upgradeSavedOptions(saved);
    assert.deepEqual(Object.entries(upgraded), [['delta', 3], ['solver', 'dual'], ['qpTolerance', 1e-7], ['qpTimeLimitMs', 0]]);
    assert.deepEqual(saved, { delta: 3, solver: 'dual', qpEps: 1e-7, qpTimeLimitMs: 0 }, 'the input is not modified');
    const current = { delta: 3, qpTolerance: 1e-7 };
    assert.equal(upgradeSavedOptions(current), current, 'options under today’s names come back as they are');
  });

  it('--resume reads a run.json that says qpEps', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-renamed-'));
    try {
      await writeFile(path.join(dir, 'run.json'), JSON.stringify({ dataset: 'mnist', options: { delta: 2, qpEps: 1e-7 } }));
      const settings = await readRunSettings(dir);
      assert.equal(settings.options.qpTolerance, 1e-7);
      assert.equal(settings.options.delta, 2);
      assert.equal((settings.options as unknown as Record<string, unknown>).qpEps, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('0.2.0 renames: cut-pool bounds in the order (lower, upper)', () => {
  it('appendDense, appendSparse and appendMany take lower before upper', () => {
    const pool = new CutPool(2);
    try {
      pool.appendDense(Float64Array.of(1, 0), -1, 2);
      pool.appendSparse(Int32Array.of(1), Float64Array.of(1), -Infinity, 3);
      pool.appendMany([Float64Array.of(1, 1), { index: Int32Array.of(0), value: Float32Array.of(2) }], [0, -5], [Infinity, 5]);
      const { lower, upper } = pool.rowBounds();
      assert.deepEqual([...lower], [-1, -Infinity, 0, -5]);
      assert.deepEqual([...upper], [2, 3, Infinity, 5]);
      // An old (row, upper, lower) call has its bounds the wrong way round and is refused.
      assert.throws(() => pool.appendDense(Float64Array.of(1, 0), 2, -1), { name: 'RangeError', message: 'lower (2) must not exceed upper (-1)' });
      assert.throws(() => pool.appendDense(Float64Array.of(1, 0), 2, -Infinity), { name: 'RangeError', message: 'upper must not be -Infinity' });
      assert.throws(() => (pool.appendDense as (row: Float64Array, upper: number) => number)(Float64Array.of(1, 0), 2), { name: 'TypeError', message: 'upper must be a number' });
      assert.throws(() => pool.appendMany([Float64Array.of(1, 1)], [0], [1, 2]), { name: 'RangeError', message: 'upper must have length 1, got 2' });
      assert.equal(pool.size, 4);
    } finally {
      pool.dispose();
    }
  });
});

describe('0.2.0 renames: old CLI flags exit 2 with one line naming the new flag', () => {
  const cases: Array<[string[], string]> = [
    [['qp', 'solve', 'x.qps', '--eps', '1e-6'], '--eps was renamed --tolerance'],
    [['qp', 'solve', 'x.qps', '--max-iter', '10'], '--max-iter was renamed --max-iterations'],
    [['correct', '--model', 'm.json', '--out', 'x', '--qp-eps', '1e-6'], '--qp-eps was renamed --qp-tolerance'],
    [['demo', '--qp-eps', '1e-6'], '--qp-eps was renamed --qp-tolerance'],
  ];
  for (const [args, line] of cases) {
    it(`advcorrect ${args.join(' ')}`, async () => {
      const r = await runCli(...args);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, `advcorrect: ${line}\n`);
      assert.equal(r.stdout, '');
    });
  }

  it('--help lists the new flags and not the old ones', async () => {
    const qp = await runCli('qp', 'solve', '--help');
    assert.match(qp.stdout, /--tolerance <tol>/);
    assert.match(qp.stdout, /--max-iterations <n>/);
    assert.doesNotMatch(qp.stdout, /--eps|--max-iter /);
    const correct = await runCli('correct', '--help');
    assert.match(correct.stdout, /--qp-tolerance <t>/);
    assert.doesNotMatch(correct.stdout, /--qp-eps/);
  });
});
