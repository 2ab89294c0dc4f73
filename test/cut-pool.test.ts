import assert from 'node:assert/strict';
import { CutPool } from '../lib/qp/cut-pool.js';
import { loadNative } from '../lib/native.js';
import { buildPool, randomCutQp, rng, normal } from './helpers/random-qp.js';

/** G = A D⁻¹ Aᵀ recomputed from the pool's own CSR rows. */
function gramFromScratch(pool: CutPool, diagonal: Float64Array): Float64Array {
  const { rowPtr, colIndex, values } = pool.toCsr();
  const m = rowPtr.length - 1;
  const dense: Float64Array[] = [];
  for (let i = 0; i < m; i++) {
    const row = new Float64Array(pool.n);
    for (let k = rowPtr[i]; k < rowPtr[i + 1]; k++) row[colIndex[k]] = values[k];
    dense.push(row);
  }
  const g = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let c = 0; c < pool.n; c++) s += (dense[i][c] * dense[j][c]) / diagonal[c];
      g[i * m + j] = s;
    }
  }
  return g;
}

function maxRelDiff(a: Float64Array, b: Float64Array): number {
  assert.equal(a.length, b.length);
  let scale = 1;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let diff = 0;
  for (let k = 0; k < a.length; k++) diff = Math.max(diff, Math.abs(a[k] - b[k]));
  return diff / scale;
}

describe('CutPool', function () {
  it('keeps G = A D⁻¹ Aᵀ exact through appends of every kind and removals', function () {
    const qp = randomCutQp({ n: 120, m: 40, density: 0.6, seed: 61, degenerate: true });
    const pool = buildPool(qp, qp.rows.slice(0, 20));
    assert.ok(maxRelDiff(pool.gram(), gramFromScratch(pool, qp.diagonal)) < 1e-13);
    // Appends after G exists are folded in incrementally.
    for (const row of qp.rows.slice(20)) {
      if (row.dense) pool.appendDense(row.single ? Float32Array.from(expand(row.index, row.value, qp.n)) : expand(row.index, row.value, qp.n), row.lower, row.upper);
      else pool.appendSparse(row.index, row.value, row.lower, row.upper);
    }
    assert.ok(maxRelDiff(pool.gram(), gramFromScratch(pool, qp.diagonal)) < 1e-13);
    const ids = pool.ids();
    assert.equal(pool.remove([ids[0], ids[7], ids[ids.length - 1], 999999]), 3);
    assert.equal(pool.size, ids.length - 3);
    assert.ok(maxRelDiff(pool.gram(), gramFromScratch(pool, qp.diagonal)) < 1e-13);
    // Removals while appends are pending (G not yet updated) also keep it exact.
    pool.appendSparse(new Int32Array([1, 5]), new Float64Array([2, -1]), -Infinity, 3);
    pool.remove([pool.ids()[2]]);
    assert.ok(maxRelDiff(pool.gram(), gramFromScratch(pool, qp.diagonal)) < 1e-13);
    const removed = pool.removeDuplicates(1e-9);
    assert.ok(removed > 0);
    assert.ok(maxRelDiff(pool.gram(), gramFromScratch(pool, qp.diagonal)) < 1e-13);
  });

  it('ids are stable and increasing; remove ignores unknown ids', function () {
    const pool = new CutPool(3);
    const a = pool.appendDense(new Float64Array([1, 0, 0]), -Infinity, 1);
    const b = pool.appendDense(new Float64Array([0, 1, 0]), -Infinity, 1);
    const c = pool.appendSparse(new Int32Array([2]), new Float32Array([1]), -Infinity, 1);
    assert.deepEqual(pool.ids(), [a, b, c]);
    assert.ok(a < b && b < c);
    assert.equal(pool.remove([b, 12345]), 1);
    assert.deepEqual(pool.ids(), [a, c]);
    const d = pool.appendDense(new Float64Array([1, 1, 1]), -Infinity, 1);
    assert.ok(d > c);
    assert.deepEqual(pool.rowBounds().upper, new Float64Array([1, 1, 1]));
  });

  it('removeDuplicates drops exact, scaled and zero rows but keeps distinct or tighter ones', function () {
    const pool = new CutPool(4, { diagonal: new Float64Array([1, 2, 3, 4]) });
    const base = new Float64Array([1, 2, 0, -1]);
    const keep1 = pool.appendDense(base, -Infinity, 1);
    pool.appendDense(base.slice(), -Infinity, 1); // exact duplicate
    pool.appendDense(base.map((v) => 3 * v), -Infinity, 3); // scaled copy, same half-space
    const tighter = pool.appendDense(base.map((v) => 3 * v), -Infinity, 2); // parallel but tighter: a different constraint
    pool.appendSparse(new Int32Array(0), new Float64Array(0), -1, 1); // zero row, always satisfied
    const zeroInfeasible = pool.appendSparse(new Int32Array(0), new Float64Array(0), -Infinity, -1); // zero row, never satisfied: kept
    const other = pool.appendDense(new Float64Array([0, 0, 1, 0]), -Infinity, 1);
    const nearDup = pool.appendDense(new Float64Array([1, 2, 1e-7, -1]), -Infinity, 1); // cosine ≈ 1 − 1e-15
    assert.equal(pool.removeDuplicates(1e-9), 4);
    assert.deepEqual(pool.ids(), [keep1, tighter, zeroInfeasible, other]);
    assert.ok(!pool.ids().includes(nearDup));
  });

  it('removeInactive drops rows with a zero multiplier in the last k solves', async function () {
    const pool = new CutPool(2);
    const active = pool.appendDense(new Float64Array([1, 0]), -Infinity, 0); // cuts off w0 = (1, 1)
    pool.appendDense(new Float64Array([0, 1]), -Infinity, 5); // never active
    const w0 = new Float64Array([1, 1]);
    await pool.solve(w0);
    assert.equal(pool.removeInactive(2), 0);
    await pool.solve(w0);
    assert.equal(pool.removeInactive(2), 1);
    assert.deepEqual(pool.ids(), [active]);
  });

  it('stores float32 rows in 4 bytes a value and sparse rows by their non-zeros', function () {
    const n = 100000;
    const empty = new CutPool(n);
    const base = empty.memoryBytes();
    const f32 = new CutPool(n);
    f32.appendDense(new Float32Array(n).fill(1), -Infinity, 1);
    const f64 = new CutPool(n);
    f64.appendDense(new Float64Array(n).fill(1), -Infinity, 1);
    const sparse = new CutPool(n);
    sparse.appendSparse(Int32Array.from({ length: 1000 }, (_, k) => k * 10), new Float64Array(1000).fill(1), -Infinity, 1);
    const rowF32 = f32.memoryBytes() - base;
    const rowF64 = f64.memoryBytes() - base;
    const rowSparse = sparse.memoryBytes() - base;
    assert.ok(rowF32 >= 4 * n && rowF32 < 4 * n + 1024, `float32 row: ${rowF32} bytes`);
    assert.ok(rowF64 >= 8 * n && rowF64 < 8 * n + 1024, `float64 row: ${rowF64} bytes`);
    assert.ok(rowSparse >= 12 * 1000 && rowSparse < 12 * 1000 + 1024, `sparse row: ${rowSparse} bytes`);
    for (const p of [empty, f32, f64, sparse]) p.dispose();
  });

  it('rowActivity and toCsr agree with the appended rows', function () {
    const rand = rng(62);
    const n = 50;
    const pool = new CutPool(n);
    const dense = Float64Array.from({ length: n }, () => (rand() < 0.3 ? normal(rand) : 0));
    pool.appendDense(dense, -Infinity, 1);
    pool.appendSparse(new Int32Array([3, 9, 49]), new Float32Array([0.5, -2, 4]), -Infinity, 1);
    const w = Float64Array.from({ length: n }, () => normal(rand));
    const act = pool.rowActivity(w);
    let expected0 = 0;
    for (let j = 0; j < n; j++) expected0 += dense[j] * w[j];
    assert.ok(Math.abs(act[0] - expected0) < 1e-12);
    assert.ok(Math.abs(act[1] - (0.5 * w[3] - 2 * w[9] + 4 * w[49])) < 1e-12);
    const csr = pool.toCsr();
    assert.equal(csr.rowPtr.length, 3);
    assert.equal(csr.rowPtr[1], dense.filter((v) => v !== 0).length);
    assert.deepEqual(Array.from(csr.colIndex.subarray(csr.rowPtr[1])), [3, 9, 49]);
  });

  describe('bad input', function () {
    const pool = new CutPool(3);
    const cases: Array<[string, () => unknown, typeof TypeError | typeof RangeError, string]> = [
      ['n not a number', () => new CutPool('3' as unknown as number), TypeError, 'n must be a number'],
      ['n zero', () => new CutPool(0), RangeError, 'n must be a positive integer, got 0'],
      ['n fractional', () => new CutPool(2.5), RangeError, 'n must be a positive integer, got 2.5'],
      ['non-positive D', () => new CutPool(2, { diagonal: new Float64Array([1, 0]) }), RangeError, 'diagonal[1] must be positive and finite, got 0'],
      ['negative scalar D', () => new CutPool(2, { diagonal: -1 }), RangeError, 'diagonal must be positive and finite, got -1'],
      ['D of wrong length', () => new CutPool(2, { diagonal: new Float64Array(3).fill(1) }), RangeError, 'diagonal must have length 2, got 3'],
      ['bounds crossed', () => new CutPool(1, { lower: new Float64Array([1]), upper: new Float64Array([0]) }), RangeError, 'lower[0] (1) must not exceed upper[0] (0)'],
      ['row of wrong length', () => pool.appendDense(new Float64Array(2), -Infinity, 1), RangeError, 'row must have length 3, got 2'],
      ['row not typed', () => pool.appendDense([1, 2, 3] as unknown as Float64Array, -Infinity, 1), TypeError, 'row must be a Float32Array or Float64Array'],
      ['NaN in row', () => pool.appendDense(new Float64Array([1, NaN, 0]), -Infinity, 1), RangeError, 'row[1] must be finite, got NaN'],
      ['NaN bound', () => pool.appendDense(new Float64Array(3), -Infinity, NaN), RangeError, 'upper must not be NaN'],
      ['lower > upper', () => pool.appendDense(new Float64Array(3), 1, 0), RangeError, 'lower (1) must not exceed upper (0)'],
      ['unsorted indices', () => pool.appendSparse(new Int32Array([2, 1]), new Float64Array(2), -Infinity, 1), RangeError, 'index must be strictly increasing (index[0] = 2, index[1] = 1)'],
      ['repeated index', () => pool.appendSparse(new Int32Array([1, 1]), new Float64Array(2), -Infinity, 1), RangeError, 'index must be strictly increasing (index[0] = 1, index[1] = 1)'],
      ['index out of range', () => pool.appendSparse(new Int32Array([0, 3]), new Float64Array(2), -Infinity, 1), RangeError, 'index[1] = 3 is out of range [0, 3)'],
      ['negative index', () => pool.appendSparse(new Int32Array([-1]), new Float64Array(1), -Infinity, 1), RangeError, 'index[0] = -1 is out of range [0, 3)'],
      ['index/value lengths', () => pool.appendSparse(new Int32Array([0]), new Float64Array(2), -Infinity, 1), RangeError, 'index and value must have the same length, got 1 and 2'],
      ['index type', () => pool.appendSparse(new Float64Array([0]) as unknown as Int32Array, new Float64Array(1), -Infinity, 1), TypeError, 'index must be an Int32Array'],
      ['empty pool', () => pool.solveSync(new Float64Array(3)), RangeError, 'the cut pool is empty: append at least one row before solving'],
      ['removeInactive(0)', () => pool.removeInactive(0), RangeError, 'k must be a positive integer, got 0'],
      ['removeDuplicates(1)', () => pool.removeDuplicates(1), RangeError, 'tol must be in [0, 1), got 1'],
    ];
    for (const [label, fn, type, message] of cases) {
      it(`${label}: ${type.name} "${message}"`, function () {
        assert.throws(fn, (e: unknown) => e instanceof type && (e as Error).message === message);
      });
    }

    it('checks solve arguments', function () {
      const p = new CutPool(2);
      p.appendDense(new Float64Array([1, 1]), -Infinity, 0);
      assert.throws(() => p.solveSync(new Float64Array(3)), /^RangeError: w0 must have length 2, got 3$/);
      assert.throws(() => p.solveSync(new Float64Array([0, Infinity])), /^RangeError: w0\[1\] must be finite, got Infinity$/);
      assert.throws(() => p.solveSync(new Float64Array(2), { tolerance: -1 }), /^RangeError: options.tolerance must be a positive number, got -1$/);
      assert.throws(() => p.solveSync(new Float64Array(2), { solver: 'simplex' as 'dual' }), /^RangeError: options.solver must be 'dual' or 'admm', got 'simplex'$/);
      assert.throws(() => p.solveSync(new Float64Array(2), { maxIterations: 1.5 }), /^RangeError: options.maxIterations must be a positive integer, got 1.5$/);
    });

    it('the native layer rejects junk itself without crashing the process', function () {
      const native = loadNative();
      assert.throws(() => new native.CutPool(-1), RangeError);
      const raw = new native.CutPool(3);
      assert.throws(() => raw.appendDense(new Float64Array(2), -Infinity, 1), RangeError);
      assert.throws(() => raw.appendDense(new Int8Array(3), -Infinity, 1), TypeError);
      assert.throws(() => raw.appendSparse(new Int32Array([5]), new Float64Array([1]), -Infinity, 1), /out of range/);
      assert.throws(() => raw.appendSparse(new Int32Array([1, 0]), new Float64Array([1, 1]), -Infinity, 1), /strictly increasing/);
      assert.throws(() => raw.appendDense(new Float64Array([NaN, 0, 0]), -Infinity, 1), /finite/);
      assert.throws(() => raw.solveDualSync(new Float64Array(3), {}), /empty/);
      assert.throws(() => raw.setDiagonal(new Float64Array([1, -1, 1])), RangeError);
      assert.throws(() => native.admmSolveCutPoolSync({}, new Float64Array(3), {}), TypeError);
      raw.appendDense(new Float64Array([1, 0, 0]), -Infinity, 0);
      assert.throws(() => raw.solveDualSync(new Float64Array(3), {}, undefined, {}), TypeError);
      assert.throws(() => raw.solveDualSync(new Float64Array(3), { tolerance: NaN }), RangeError);
      raw.dispose();
      assert.throws(() => raw.size, /disposed/);
    });
  });
});

function expand(index: Int32Array, value: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n);
  index.forEach((j, k) => (out[j] = value[k]));
  return out;
}
