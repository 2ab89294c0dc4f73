/**
 * The factored cut pool (lib/qp/factored-pool.ts) and factored margin rows
 * (lib/models/factored-rows.ts): rows equal marginRows' rows, G and the QP answer equal those of
 * the stored CutPool holding the same rows, the loop gives the same correction with either path,
 * and a pool over the memory limit refuses with ERR_NO_MEMORY naming the factored option.
 */
import assert from 'node:assert/strict';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { correct, type LabelledImages } from '../lib/correction/correct.js';
import { chooseRowPath } from '../lib/correction/row-path.js';
import { resolveCorrectionOptions } from '../lib/correction/options.js';
import { AdvcorrectError } from '../lib/errors.js';
import { buildModel, mlpWideParams } from '../lib/models/architectures.js';
import { expandFactoredRow, factoredLayout, factoredMarginRows, factoredRowDot } from '../lib/models/factored-rows.js';
import { marginRows } from '../lib/models/index.js';
import { ParameterView } from '../lib/models/parameters.js';
import { CutPool } from '../lib/qp/cut-pool.js';
import { FactoredCutPool } from '../lib/qp/factored-pool.js';
import { MEMORY_LIMIT_ENV, parseByteSize } from '../lib/qp/memory.js';

function randomImages(count: number, size: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(count * size);
  for (let i = 0; i < out.length; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 < 0.6 ? 0 : s / 2 ** 32;
  }
  return out;
}

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  return m;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A CNNLight-like net: convolutions (rest, dense blocks) and Dense layers (factored). */
function smallCnn(seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [28, 28, 1] });
  let x = tfl.layers.conv2d({ name: 'conv1', filters: 3, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed }) }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ name: 'fc1', units: 12, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ name: 'output', units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 2 }) }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x });
}

describe('factored cut pool', function () {
  this.timeout(300000);
  before(async () => {
    await initBackend();
  });

  for (const [name, make] of [
    ['mlp-wide of width 16', () => buildModel('mlp-wide', { seed: 3, width: 16 })],
    ['a small CNN (conv rest + Dense factors)', () => smallCnn(5)],
  ] as const) {
    it(`${name}: factored rows expand to marginRows' rows; G and the QP answer equal the stored pool's`, async () => {
      const model = make();
      const view = new ParameterView(model);
      const n = view.size;
      const layout = factoredLayout(model, view);
      assert.ok(layout.blocks.length >= 1 && layout.restSize > 0 && layout.restSize < n);
      const images = randomImages(4, 784, 9);
      const labels = [1, 7, 3, 0];
      const options = { delta: 0.5, classes: 'all' as const };
      const factored = await factoredMarginRows(model, view, images, labels, options);
      const stored = await marginRows(model, view, images, labels, { ...options, format: 'dense' });
      assert.equal(factored.count, stored.count);
      assert.deepEqual(Array.from(factored.example), Array.from(stored.example));
      assert.deepEqual(Array.from(factored.wrongClass), Array.from(stored.wrongClass));
      const w = view.read();
      for (let r = 0; r < factored.count; r++) {
        assert.ok(Math.abs(factored.value[r]! - stored.value[r]!) <= 1e-5 * Math.max(1, Math.abs(stored.value[r]!)));
        const expanded = expandFactoredRow(layout, factored.rows[r]!);
        const want = stored.dense![r]!;
        // The stored rows round x_p·d_q to float32; the factors keep them exact.
        assert.ok(maxAbsDiff(expanded, want) <= 2e-6 * Math.max(1e-3, maxAbs(want)), `row ${r}: ${maxAbsDiff(expanded, want)}`);
        let dot = 0;
        for (let i = 0; i < n; i++) dot += expanded[i]! * w[i]!;
        assert.ok(Math.abs(factoredRowDot(layout, factored.rows[r]!, w) - dot) <= 1e-9 * Math.max(1, Math.abs(dot)));
      }

      // The same QP in both pools: margin rows (factored / expanded to float64) and a dense row.
      const fpool = new FactoredCutPool(n, layout.blocks);
      const spool = new CutPool(n);
      try {
        const w0 = Float64Array.from(w);
        for (let r = 0; r < factored.count; r++) {
          const expanded = expandFactoredRow(layout, factored.rows[r]!);
          let act = 0;
          for (let i = 0; i < n; i++) act += expanded[i]! * w0[i]!;
          const upper = act - (r % 3 === 0 ? 1 : -0.5); // a third of the rows violated at w₀
          fpool.appendFactored(factored.rows[r]!, -Infinity, upper);
          spool.appendDense(expanded, -Infinity, upper);
        }
        const dense = new Float64Array(n).map((_, i) => Math.sin(i + 1) * 1e-3);
        fpool.appendDense(dense, -Infinity, 10);
        spool.appendDense(dense, -Infinity, 10);
        assert.equal(fpool.size, spool.size);
        const gf = fpool.gram();
        const gs = spool.gram();
        assert.ok(maxAbsDiff(gf, gs) <= 1e-10 * Math.max(1, maxAbs(gs)), `G differs by ${maxAbsDiff(gf, gs)}`);
        assert.ok(maxAbsDiff(fpool.rowActivity(w0), spool.rowActivity(w0)) <= 1e-10 * Math.max(1, maxAbs(spool.rowActivity(w0))));
        const a = await fpool.solve(w0, { tolerance: 1e-9 });
        const b = await spool.solve(w0, { tolerance: 1e-9 });
        assert.equal(a.status, 'solved');
        assert.equal(b.status, 'solved');
        assert.ok(maxAbsDiff(a.x, b.x) <= 1e-8 * Math.max(1, maxAbs(b.x)), `x differs by ${maxAbsDiff(a.x, b.x)}`);
        assert.ok(Math.abs(a.objective - b.objective) <= 1e-8 * Math.max(1, b.objective));
        assert.ok(maxAbsDiff(a.y, b.y) <= 1e-6 * Math.max(1, maxAbs(b.y)));
        // Removal keeps both in step; a warm solve agrees again.
        const ids = fpool.ids();
        fpool.remove([ids[0]!, ids[5]!]);
        const sids = spool.ids();
        spool.remove([sids[0]!, sids[5]!]);
        const a2 = fpool.solveSync(w0);
        const b2 = spool.solveSync(w0);
        assert.equal(a2.status, b2.status);
        assert.ok(maxAbsDiff(a2.x, b2.x) <= 1e-8 * Math.max(1, maxAbs(b2.x)));
        assert.ok(fpool.memoryBytes() < spool.memoryBytes(), `factored ${fpool.memoryBytes()} vs stored ${spool.memoryBytes()} bytes`);
      } finally {
        fpool.dispose();
        spool.dispose();
        model.dispose();
      }
    });
  }

  it('checks its arguments with exact messages', async () => {
    assert.throws(() => new FactoredCutPool(14, [{ offset: 0, rows: 3, cols: 4 }, { offset: 13, rows: 1, cols: 2 }]), {
      name: 'RangeError',
      message: 'blocks[1] ends at 15, beyond n = 14',
    });
    assert.throws(() => new FactoredCutPool(20, [{ offset: 0, rows: 3, cols: 4 }, { offset: 5, rows: 1, cols: 1 }]), {
      name: 'RangeError',
      message: 'blocks[1] overlaps the block before it (blocks must be in offset order)',
    });
    const pool = new FactoredCutPool(20, [{ offset: 2, rows: 3, cols: 4 }]);
    assert.equal(pool.factorSize, 7);
    assert.equal(pool.restSize, 8);
    assert.throws(() => pool.appendFactored({ factors: new Float32Array(6), rest: new Float32Array(8) }, -Infinity, 1), { name: 'RangeError', message: 'row.factors must have length 7, got 6' });
    assert.throws(() => pool.appendFactored({ factors: new Float32Array(7), rest: new Float32Array(8) }, -Infinity, -Infinity), { name: 'RangeError', message: 'upper must not be -Infinity' });
    await assert.rejects(() => pool.solve(new Float64Array(20)), { name: 'RangeError', message: 'the cut pool is empty: append at least one row before solving' });
    pool.appendFactored({ factors: new Float32Array(7).fill(1), rest: new Float32Array(8).fill(0.5) }, -Infinity, 1);
    assert.throws(() => pool.solveSync(new Float64Array(20), { solver: 'admm' }), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_UNSUPPORTED');
    assert.deepEqual(Array.from(pool.expandRow(0)).slice(0, 4), [0.5, 0.5, 1, 1]);
    pool.dispose();
    assert.throws(() => pool.size, (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_DISPOSED');
  });

  it('a pool asked to hold more than the memory limit refuses with ERR_NO_MEMORY naming the factored rows', () => {
    assert.equal(parseByteSize('512M'), 512 * 2 ** 20);
    assert.equal(parseByteSize('2G'), 2 * 2 ** 30);
    assert.throws(() => parseByteSize('lots'), RangeError);
    const saved = process.env[MEMORY_LIMIT_ENV];
    process.env[MEMORY_LIMIT_ENV] = '1M';
    try {
      const n = 100_000;
      const pool = new CutPool(n);
      pool.appendDense(new Float32Array(n), -Infinity, 1); // 0.4 MB: fits
      pool.appendDense(new Float32Array(n), -Infinity, 1);
      assert.throws(
        () => pool.appendDense(new Float32Array(n), -Infinity, 1),
        (e: unknown) =>
          e instanceof AdvcorrectError && e.code === 'ERR_NO_MEMORY' && /rows: 'factored'/.test(e.message) && /--rows factored/.test(e.message) && /ADVCORRECT_MEMORY_LIMIT/.test(e.message),
      );
      assert.equal(pool.size, 2, 'the refused row was not stored');
      pool.dispose();
      const fpool = new FactoredCutPool(n, [{ offset: 0, rows: 100, cols: 900 }], { memoryLimitBytes: 500_000 });
      assert.throws(() => fpool.appendDense(new Float64Array(n), -Infinity, 1), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_NO_MEMORY' && /maxCuts/.test(e.message));
      fpool.appendFactored({ factors: new Float32Array(1000), rest: new Float32Array(n - 90_000) }, -Infinity, 1);
      fpool.dispose();
    } finally {
      if (saved === undefined) delete process.env[MEMORY_LIMIT_ENV];
      else process.env[MEMORY_LIMIT_ENV] = saved;
    }
  });

  it("rows: 'auto' keeps small models stored and factors mlp-wide; 'factored' needs the dual solver", () => {
    const options = resolveCorrectionOptions({});
    const small = buildModel('mlp-wide', { seed: 1, width: 8 });
    assert.equal(chooseRowPath(options, small, new ParameterView(small), 10, 10).kind, 'stored');
    // A limit that stored rows of 1,000 cuts × n floats exceed by far.
    assert.equal(chooseRowPath(options, small, new ParameterView(small), 10, 10, 1_000_000).kind, 'factored');
    assert.equal(chooseRowPath({ ...options, rows: 'stored' }, small, new ParameterView(small), 10, 10, 1_000_000).kind, 'stored');
    assert.throws(() => chooseRowPath({ ...options, rows: 'factored', solver: 'admm' }, small, new ParameterView(small), 10, 10), {
      name: 'RangeError',
      message: "options.rows 'factored' needs solver 'dual' (the factored cut pool has no ADMM), got solver 'admm'",
    });
    assert.equal(mlpWideParams(4096), 20_037_642);
    small.dispose();
  });

  it('the loop gives the same correction with factored and stored rows', async () => {
    const model = buildModel('mlp-wide', { seed: 4, width: 24 });
    const images = randomImages(30, 784, 17);
    const labels = Uint8Array.from({ length: 30 }, (_, i) => (i * 7) % 10);
    const adversarial: LabelledImages = { images: images.slice(0, 6 * 784), labels: labels.slice(0, 6) };
    const clean: LabelledImages = { images: images.slice(6 * 784), labels: labels.slice(6) };
    const options = { maxIterations: 3, rounds: 1, delta: 0.5, segmentPoints: 2 };
    try {
      const a = await correct(model, adversarial, clean, { ...options, rows: 'factored' });
      const b = await correct(model, adversarial, clean, { ...options, rows: 'stored' });
      assert.equal(a.result.iterations.length, b.result.iterations.length);
      assert.ok(a.result.iterations[0]!.cutsTotal > 10, `${a.result.iterations[0]!.cutsTotal} cuts`);
      for (let k = 0; k < a.result.iterations.length; k++) {
        const x = a.result.iterations[k]!;
        const y = b.result.iterations[k]!;
        assert.equal(x.cutsTotal, y.cutsTotal, `iteration ${k + 1}: cuts`);
        assert.equal(x.qpStatus, y.qpStatus);
        assert.ok(Math.abs(x.qpObjective - y.qpObjective) <= 1e-4 * Math.max(1e-6, Math.abs(y.qpObjective)), `iteration ${k + 1}: objective ${x.qpObjective} vs ${y.qpObjective}`);
      }
      a.model.dispose();
      b.model.dispose();
    } finally {
      model.dispose();
    }
  });
});
