import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { AdvcorrectError } from '../lib/errors.js';
import { ParameterView } from '../lib/models/parameters.js';
import {
  cleanLoss,
  cleanLossGradient,
  compileModel,
  forEachMarginRow,
  forwardGraph,
  marginRows,
  margins,
  predictLogits,
} from '../lib/models/index.js';
import { Random } from '../lib/data/random.js';
import { PAPER_ARCH_NAMES, buildModel } from '../lib/models/architectures.js';
import { maxAbs, maxAbsDiff } from './helpers/arrays.js';

/** Sets every weight of the model (including BN statistics) to seeded random values. */
function randomiseWeights(model: tfl.LayersModel, seed: number): void {
  const rng = new Random(seed);
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((v) => {
      const data = new Float32Array((v.shape as number[]).reduce((a, b) => a * b, 1));
      const variance = v.name.includes('moving_variance');
      for (let i = 0; i < data.length; i++) data[i] = variance ? 0.5 + rng.next() : (rng.next() - 0.5) * 0.9;
      return tf.tensor(data, v.shape as number[]);
    });
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
  }
}

/** Conv net with same/valid padding, strides, explicit ZeroPadding2D, ReLU layers and fused ReLUs. */
function convNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 2] });
  let x = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 3, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', name: 'conv1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 1, padding: 'same', name: 'conv2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'relu2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: 6, activation: 'relu', name: 'fc1' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 4, name: 'output' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  randomiseWeights(model, 11);
  return model;
}

/** A residual block with BatchNorm (inference), Add and global average pooling. */
function resNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 2] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ epsilon: 1e-5, name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.activation({ activation: 'relu', name: 'act1' }).apply(x) as tfl.SymbolicTensor;
  let y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'conv2' }).apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ epsilon: 1e-5, name: 'bn2' }).apply(y) as tfl.SymbolicTensor;
  let z = tfl.layers.add({ name: 'add' }).apply([x, y]) as tfl.SymbolicTensor;
  z = tfl.layers.reLU({ name: 'relu_add' }).apply(z) as tfl.SymbolicTensor;
  z = tfl.layers.globalAveragePooling2d({ name: 'global_avg_pool' }).apply(z) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, name: 'output' }).apply(z) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  randomiseWeights(model, 12);
  return model;
}

function randomImages(n: number, size: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const out = new Float32Array(n * size);
  for (let i = 0; i < out.length; i++) out[i] = rng.next();
  return out;
}

/** Gradient of f_j(x) − f_y(x) w.r.t. the view's variables by tfjs autodiff through model.apply. */
function autodiffRow(model: tfl.LayersModel, view: ParameterView, x: Float32Array, inputShape: number[], y: number, j: number): Float64Array {
  const variables = view.entries.map((e) => {
    const layer = model.getLayer(e.layer);
    const v = layer.trainableWeights.find((w) => w.name.endsWith(`/${e.name}`) || w.originalName.endsWith(`/${e.name}`));
    assert.ok(v, `variable ${e.layer}/${e.name}`);
    return v.read() as tf.Variable;
  });
  const { grads } = tf.variableGrads(() => {
    const logits = model.apply(tf.tensor(x, [1, ...inputShape]), { training: false }) as tf.Tensor2D;
    const row = tf.reshape(logits, [-1]);
    return tf.sub(tf.gather(row, j), tf.gather(row, y)) as tf.Scalar;
  }, variables);
  const out = new Float64Array(view.size);
  view.entries.forEach((e, k) => {
    const g = grads[variables[k].name].dataSync();
    for (let i = 0; i < e.size; i++) out[e.offset + i] = g[i];
  });
  Object.values(grads).forEach((t) => t.dispose());
  return out;
}

describe('gradient engine', function () {
  before(async function () {
    await initBackend('cpu');
  });

  describe('ParameterView', function () {
    it('flattens every trainable tensor in layer order, kernel before bias, and round-trips', function () {
      const model = convNet();
      const view = new ParameterView(model);
      assert.deepEqual(
        view.entries.map((e) => `${e.layer}/${e.name}`),
        ['conv1/kernel', 'conv1/bias', 'conv2/kernel', 'conv2/bias', 'fc1/kernel', 'fc1/bias', 'output/kernel', 'output/bias'],
      );
      assert.equal(view.size, model.countParams());
      let offset = 0;
      for (const e of view.entries) {
        assert.equal(e.offset, offset);
        assert.equal(e.size, e.shape.reduce((a, b) => a * b, 1));
        offset += e.size;
      }
      const w = view.read();
      // Row-major tfjs layout: the first entry is conv1's kernel[0,0,0,:].
      const kernel = model.getLayer('conv1').getWeights()[0].dataSync();
      assert.deepEqual(Array.from(w.subarray(0, 6)), Array.from(kernel.subarray(0, 6)));
      const changed = Float64Array.from(w, (v, i) => v + (i % 7) * 0.125);
      view.write(changed);
      const back = view.read();
      assert.ok(maxAbsDiff(back, changed) < 1e-6);
      const fc1Bias = model.getLayer('fc1').getWeights()[1].dataSync();
      const entry = view.entry('fc1', 'bias')!;
      assert.ok(maxAbsDiff(fc1Bias, changed.subarray(entry.offset, entry.offset + entry.size)) < 1e-6);
    });

    it('takes a subset of layers in model order and names unknown layers', function () {
      const model = convNet();
      const view = new ParameterView(model, ['fc1', 'conv1']);
      assert.deepEqual(view.layers, ['conv1', 'fc1']);
      // conv1: 3×3×2×3 + 3; fc1 sees the 4×4×4 output of conv2: 64×6 + 6.
      assert.equal(view.size, 3 * 3 * 2 * 3 + 3 + 64 * 6 + 6);
      assert.throws(() => new ParameterView(model, ['fc1', 'nope']), { name: 'RangeError', message: /unknown layer 'nope'/ });
      assert.throws(() => new ParameterView(model, ['flatten']), { name: 'RangeError', message: /'flatten' has no trainable parameters/ });
      assert.throws(() => view.write(new Float64Array(3)), RangeError);
    });
  });

  for (const [name, build] of [
    ['conv net (padding, strides, fused and separate ReLU)', convNet],
    ['residual net (BatchNorm, Add, global average pooling)', resNet],
  ] as const) {
    describe(name, function () {
      const model = build();
      const graph = compileModel(model);
      const n = 5;
      const images = randomImages(n, graph.inputSize, 3);
      const labels = Int32Array.from({ length: n }, (_, i) => i % graph.numClasses);

      it('evaluates the same logits as model.predict', function () {
        const ours = tf.tidy(() => forwardGraph(graph, tf.tensor(images, [n, ...graph.inputShape]))[graph.outputSlot].dataSync());
        const theirs = predictLogits(model, images, { batchSize: 2 });
        assert.ok(maxAbs(theirs) > 1e-3, 'logits are not trivially zero');
        assert.ok(maxAbsDiff(ours, theirs) < 1e-5);
      });

      it('margin rows equal tfjs autodiff of f_j − f_y for every example and wrong class', async function () {
        const view = new ParameterView(model);
        const rows = await marginRows(model, view, images, labels, { delta: 0.5, classes: 'all', format: 'dense', batchSize: 2 });
        const C = graph.numClasses;
        assert.equal(rows.count, n * (C - 1));
        const logits = predictLogits(model, images);
        let nonzeroRows = 0;
        for (let r = 0; r < rows.count; r++) {
          const i = rows.example[r];
          const j = rows.wrongClass[r];
          assert.equal(i, Math.floor(r / (C - 1)));
          assert.notEqual(j, labels[i]);
          assert.ok(Math.abs(rows.value[r] - (logits[i * C + j] - logits[i * C + labels[i]] + 0.5)) < 1e-5);
          const expected = autodiffRow(model, view, images.subarray(i * graph.inputSize, (i + 1) * graph.inputSize), graph.inputShape, labels[i], j);
          const scale = Math.max(1, maxAbs(expected));
          assert.ok(maxAbsDiff(rows.dense![r], expected) < 1e-5 * scale, `row ${r}: differs by ${maxAbsDiff(rows.dense![r], expected)}`);
          if (maxAbs(expected) > 0) nonzeroRows++;
        }
        assert.ok(nonzeroRows > rows.count / 2, 'most rows carry a gradient');
      });

      it('margin rows match central finite differences of the margin', async function () {
        const view = new ParameterView(model);
        const rows = await marginRows(model, view, images.subarray(0, graph.inputSize), labels.subarray(0, 1), { delta: 0, classes: 'worst', format: 'dense' });
        const row = rows.dense![0];
        const j = rows.wrongClass[0];
        const w0 = view.read();
        const rng = new Random(5);
        const C = graph.numClasses;
        const g = (w: Float64Array): number => {
          view.write(w);
          const l = predictLogits(model, images.subarray(0, graph.inputSize));
          return l[j] - l[labels[0]];
        };
        let checked = 0;
        try {
          for (const e of view.entries) {
            for (let t = 0; t < 3; t++) {
              const k = e.offset + rng.nextInt(e.size);
              const h = 1e-2;
              const plus = Float64Array.from(w0);
              plus[k] += h;
              const minus = Float64Array.from(w0);
              minus[k] -= h;
              const g0 = g(w0);
              const gp = g(plus);
              const gm = g(minus);
              // The margin is piecewise linear in one coordinate, so a one-sided difference is exact
              // (up to float32 rounding) unless a ReLU kink lies on that side.
              const forward = (gp - g0) / h;
              const backward = (g0 - gm) / h;
              const tol = 3e-4 * Math.max(1, Math.abs(row[k]));
              const where = `${e.layer}/${e.name}[${k - e.offset}]: forward ${forward}, backward ${backward}, engine ${row[k]}`;
              if (Math.abs(forward - backward) <= tol) {
                assert.ok(Math.abs((forward + backward) / 2 - row[k]) <= tol, where);
                checked++;
              } else {
                // A kink on one side: the other side must still agree.
                assert.ok(Math.min(Math.abs(forward - row[k]), Math.abs(backward - row[k])) <= tol, where);
              }
            }
          }
        } finally {
          view.write(w0);
        }
        assert.ok(checked >= view.entries.length, `checked ${checked} coordinates`);
        assert.ok(C > 1);
      });

      it("'worst' rows are the 'all' rows of the most competitive wrong class; sparse rows drop exact zeros", async function () {
        const view = new ParameterView(model);
        const all = await marginRows(model, view, images, labels, { delta: 1, classes: 'all', format: 'dense' });
        const worst = await marginRows(model, view, images, labels, { delta: 1, classes: 'worst', format: 'sparse', batchSize: 3 });
        const C = graph.numClasses;
        assert.equal(worst.count, n);
        const m = margins(model, images, labels);
        for (let i = 0; i < n; i++) {
          let best = -Infinity;
          for (let r = i * (C - 1); r < (i + 1) * (C - 1); r++) best = Math.max(best, all.value[r]);
          assert.equal(worst.value[i], best);
          assert.ok(Math.abs(worst.value[i] - (1 - m[i])) < 1e-5);
          const r = i * (C - 1) + (worst.wrongClass[i] < labels[i] ? worst.wrongClass[i] : worst.wrongClass[i] - 1);
          const denseRow = all.dense![r];
          const { index, value } = worst.sparse![i];
          assert.equal(index.length, denseRow.filter((v) => v !== 0).length);
          assert.ok(index.length < view.size, 'ReLU networks have zero entries to drop');
          for (let k = 0; k < index.length; k++) {
            assert.ok(value[k] !== 0);
            if (k > 0) assert.ok(index[k] > index[k - 1]);
            assert.ok(Math.abs(denseRow[index[k]] - value[k]) < 1e-6);
          }
        }
      });

      it('native and JavaScript per-example kernels give the same rows', async function () {
        const native = await marginRows(model, new ParameterView(model), images, labels, { delta: 0, classes: 'all', format: 'dense', kernels: 'native' });
        const js = await marginRows(model, new ParameterView(model), images, labels, { delta: 0, classes: 'all', format: 'dense', kernels: 'js' });
        for (let r = 0; r < js.count; r++) {
          assert.ok(maxAbsDiff(native.dense![r], js.dense![r]) < 1e-5 * Math.max(1, maxAbs(js.dense![r])), `row ${r}`);
        }
      });

      it('the row visitor sees the same rows as marginRows, dense and sparse', async function () {
        const view = new ParameterView(model);
        const options = { delta: 0.25, classes: 'all', batchSize: 2 } as const;
        const dense = await marginRows(model, view, images, labels, { ...options, format: 'dense' });
        const seen = new Set<number>();
        const meta = await forEachMarginRow(model, view, images, labels, { ...options, format: 'dense' }, (visit) => {
          assert.ok(!seen.has(visit.row));
          seen.add(visit.row);
          assert.equal(visit.example, dense.example[visit.row]);
          assert.equal(visit.wrongClass, dense.wrongClass[visit.row]);
          assert.equal(visit.value, dense.value[visit.row]);
          assert.deepEqual(visit.dense, dense.dense![visit.row]);
        });
        assert.equal(seen.size, dense.count);
        assert.equal(meta.dense, undefined);
        assert.deepEqual(meta.value, dense.value);
        const sparse = await marginRows(model, view, images, labels, { ...options, format: 'sparse' });
        await forEachMarginRow(model, view, images, labels, { ...options, format: 'sparse' }, (visit) => {
          assert.deepEqual(visit.sparse!.index, sparse.sparse![visit.row].index);
          assert.deepEqual(visit.sparse!.value, sparse.sparse![visit.row].value);
        });
      });

      it('a layer subset gives the matching slice of the full rows', async function () {
        const full = new ParameterView(model);
        const last = full.layers[full.layers.length - 1];
        const first = full.layers[0];
        const subset = new ParameterView(model, [first, last]);
        const a = await marginRows(model, full, images, labels, { delta: 0, classes: 'worst', format: 'dense' });
        const b = await marginRows(model, subset, images, labels, { delta: 0, classes: 'worst', format: 'dense' });
        for (let r = 0; r < a.count; r++) {
          for (const e of subset.entries) {
            const f = full.entry(e.layer, e.name)!;
            assert.ok(maxAbsDiff(b.dense![r].subarray(e.offset, e.offset + e.size), a.dense![r].subarray(f.offset, f.offset + f.size)) < 1e-7);
          }
        }
      });

      it('clean loss gradient matches finite differences and the loss matches the logits', async function () {
        const view = new ParameterView(model);
        const { loss, gradient } = await cleanLossGradient(model, view, images, labels, { batchSize: 2 });
        const logits = predictLogits(model, images);
        const C = graph.numClasses;
        let ce = 0;
        for (let i = 0; i < n; i++) {
          const row = Array.from(logits.subarray(i * C, (i + 1) * C));
          const max = Math.max(...row);
          ce += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[labels[i]];
        }
        assert.ok(Math.abs(loss - ce / n) < 1e-5);
        assert.ok(Math.abs((await cleanLoss(model, images, labels, { batchSize: 3 })) - ce / n) < 1e-5);
        const w0 = view.read();
        const rng = new Random(9);
        let checked = 0;
        try {
          for (const e of view.entries) {
            for (let t = 0; t < 2; t++) {
            const k = e.offset + rng.nextInt(e.size);
            const h = 1e-3;
            const plus = Float64Array.from(w0);
            plus[k] += h;
            const minus = Float64Array.from(w0);
            minus[k] -= h;
            view.write(plus);
            const lp = await cleanLoss(model, images, labels);
            view.write(minus);
            const lm = await cleanLoss(model, images, labels);
            view.write(w0);
            const l0 = await cleanLoss(model, images, labels);
            // Cross-entropy is smooth between ReLU kinks (O(h²) truncation error); skip a kink in [w−h, w+h].
            if (Math.abs((lp - l0) - (l0 - lm)) > 1e-6 * Math.max(1, l0)) continue;
            const fd = (lp - lm) / (2 * h);
            assert.ok(Math.abs(fd - gradient[k]) < 5e-4 * Math.max(1, Math.abs(fd)), `${e.layer}/${e.name}: fd ${fd} vs ${gradient[k]}`);
            checked++;
            }
          }
        } finally {
          view.write(w0);
        }
        assert.ok(checked >= view.entries.length, `checked ${checked} coordinates`);
      });
    });
  }

  it("the paper's four architectures: rows equal autodiff (FC, CNNLight, CNN, ResNet8)", async function () {
    // The fastest backend here (ResNet8 on 32×32×16 activations is slow on the pure-JS one).
    await initBackend();
    for (const arch of PAPER_ARCH_NAMES) {
      const model = buildModel(arch, { seed: 21 });
      if (arch === 'resnet8') randomiseWeights(model, 22); // non-trivial BatchNorm statistics
      const graph = compileModel(model);
      const view = new ParameterView(model);
      assert.equal(view.size, model.trainableWeights.reduce((s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1), 0));
      const images = randomImages(2, graph.inputSize, 23);
      const labels = [3, 8];
      const rows = await marginRows(model, view, images, labels, { delta: 0, classes: 'worst', format: 'dense' });
      for (let r = 0; r < 2; r++) {
        const expected = autodiffRow(model, view, images.subarray(r * graph.inputSize, (r + 1) * graph.inputSize), graph.inputShape, labels[r], rows.wrongClass[r]);
        const scale = Math.max(1, maxAbs(expected));
        assert.ok(maxAbs(expected) > 0);
        assert.ok(maxAbsDiff(rows.dense![r], expected) < 2e-5 * scale, `${arch} row ${r}: ${maxAbsDiff(rows.dense![r], expected)}`);
      }
      // Sparse rows are the dense rows without their zeros (Dense layers take a direct path).
      const sparse = await marginRows(model, view, images, labels, { delta: 0, classes: 'worst', format: 'sparse' });
      for (let r = 0; r < 2; r++) {
        const denseRow = rows.dense![r];
        const nonzero = [...denseRow.keys()].filter((i) => denseRow[i] !== 0);
        assert.deepEqual(Array.from(sparse.sparse![r].index), nonzero, `${arch} sparse row ${r}`);
        assert.deepEqual(Array.from(sparse.sparse![r].value), nonzero.map((i) => denseRow[i]));
      }
    }
    await initBackend('cpu');
  });

  it('refuses unsupported layers and bad arguments clearly', async function () {
    const input = tfl.input({ shape: [4, 4, 1] });
    const pooled = tfl.layers.upSampling2d({ size: [2, 2], name: 'pool' }).apply(input) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten().apply(pooled) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, name: 'output' }).apply(flat) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: out });
    await assert.rejects(
      marginRows(model, new ParameterView(model), new Float32Array(16), [0], { delta: 0, classes: 'all', format: 'dense' }),
      (error: unknown) => error instanceof AdvcorrectError && error.code === 'ERR_UNSUPPORTED' && /UpSampling2D/.test(error.message),
    );
    const ok = convNet();
    const view = new ParameterView(ok);
    await assert.rejects(marginRows(ok, view, new Float32Array(127), [0], { delta: 0, classes: 'all', format: 'dense' }), RangeError);
    await assert.rejects(marginRows(ok, view, new Float32Array(128), [7], { delta: 0, classes: 'all', format: 'dense' }), { name: 'RangeError', message: /labels\[0\] = 7/ });
    await assert.rejects(marginRows(ok, view, new Float32Array(128), [0], { delta: -1, classes: 'all', format: 'dense' }), RangeError);
    await assert.rejects(marginRows(model, view, new Float32Array(16), [0], { delta: 0, classes: 'all', format: 'dense' }), { name: 'RangeError', message: /another model/ });
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      marginRows(ok, view, new Float32Array(128), [0], { delta: 0, classes: 'all', format: 'dense', signal: controller.signal }),
      (error: unknown) => error instanceof AdvcorrectError && error.code === 'ERR_ABORTED',
    );
  });
});
