// One check per file of the gradient engine in lib/models (graph, forward, backward,
// example-gradients, rows, inference, loss), each against an independent computation.
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { AdvcorrectError } from '../lib/errors.js';
import { loadDataset } from '../lib/data/datasets.js';
import { Random } from '../lib/data/random.js';
import { buildModel } from '../lib/models/architectures.js';
import { ParameterView } from '../lib/models/parameters.js';
import { compileInputs, compileModel, type Conv2DSpec } from '../lib/models/graph.js';
import { convOp, forwardGraph, type WeightOverrides } from '../lib/models/forward.js';
import { backwardGraph } from '../lib/models/backward.js';
import { appendDenseSparse, compressRange, nativeKernels, viewSteps, writeExampleGradient, type StepInputs } from '../lib/models/example-gradients.js';
import { marginRows } from '../lib/models/rows.js';
import { margins, marginsFromLogits, predictLogits, predictLogitsAsync } from '../lib/models/inference.js';
import { cleanLoss, crossEntropyFromLogits } from '../lib/models/loss.js';
import { maxAbs, maxAbsDiff } from './helpers/arrays.js';

function seeded(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 * scale);
}

/** pad → conv (valid, relu) → BatchNorm → global average pooling → dense: one of each step the backward pass walks. */
function poolNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 2] });
  let x = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'valid', activation: 'relu', name: 'conv' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ epsilon: 1e-3, name: 'bn' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, name: 'output' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  model.layers.forEach((layer, k) => {
    if (layer.weights.length === 0) return;
    layer.setWeights(layer.weights.map((v, i) => {
      const size = (v.shape as number[]).reduce((a, b) => a * b, 1);
      const values = seeded(size, 100 + 10 * k + i, 0.8);
      if (v.name.includes('moving_variance')) for (let j = 0; j < size; j++) values[j] = 0.6 + Math.abs(values[j]);
      return tf.tensor(values, v.shape as number[]);
    }));
  });
  return model;
}

describe('gradient engine, file by file', function () {
  let mnist: { images: Float32Array; labels: Int32Array };
  let cnnlight: tfl.LayersModel;

  before(async function () {
    await initBackend('cpu');
    const test = await loadDataset('mnist', 'test');
    mnist = { images: test.images.slice(0, 4 * 784), labels: Int32Array.from(test.labels.subarray(0, 4)) };
    cnnlight = buildModel('cnnlight', { seed: 7 });
  });

  describe('graph.ts', function () {
    it("compiles layers into steps, folds a zero padding into the next valid conv, and calls global average pooling 'globalAvgPool'", function () {
      const graph = compileModel(poolNet());
      assert.deepEqual(graph.steps.map((s) => `${s.kind}:${s.layer}`), ['conv2d:conv', 'bn:bn', 'globalAvgPool:pool', 'dense:output']);
      assert.deepEqual(graph.steps.map((s) => s.index), [0, 1, 2, 3]);
      const conv = graph.steps[0];
      assert.deepEqual(conv.conv?.padding, { top: 1, bottom: 1, left: 1, right: 1 });
      assert.deepEqual(conv.inputs, [graph.inputSlot]);
      assert.equal(conv.activation, 'relu');
      assert.equal(graph.outputSlot, graph.steps[3].output);
      assert.deepEqual([graph.inputShape, graph.inputSize, graph.numClasses], [[6, 6, 2], 72, 3]);
      assert.equal(compileModel(poolNet()) === graph, false, 'one graph per model');
      const model = poolNet();
      assert.equal(compileModel(model), compileModel(model), 'compiled once per model');
    });

    it('compileInputs reads the shapes of a model the compiler refuses', function () {
      const input = tfl.input({ shape: [4, 4, 1] });
      const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'up' }).apply(input) as tfl.SymbolicTensor;
      const flat = tfl.layers.flatten().apply(up) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 2 }).apply(flat) as tfl.SymbolicTensor });
      assert.deepEqual(compileInputs(model), { inputShape: [4, 4, 1], inputSize: 16, numClasses: 2 });
      assert.throws(() => compileModel(model), (error: unknown) => error instanceof AdvcorrectError && error.code === 'ERR_UNSUPPORTED' && /'up' of type UpSampling2D/.test(error.message));
      assert.throws(() => compileInputs({} as tfl.LayersModel), { name: 'TypeError', message: 'model must be a tf.LayersModel' });
    });
  });

  describe('forward.ts', function () {
    it('the logits of a CNNLight on 4 MNIST images equal model.predict to 1e-5, and an override replaces a weight', function () {
      const graph = compileModel(cnnlight);
      const x = tf.tensor(mnist.images, [4, 28, 28, 1]);
      const ours = tf.tidy(() => forwardGraph(graph, x)[graph.outputSlot].dataSync() as Float32Array);
      const theirs = tf.tidy(() => (cnnlight.predict(x) as tf.Tensor).dataSync() as Float32Array);
      assert.ok(maxAbs(theirs) > 1e-2, 'logits are not trivially zero');
      assert.ok(maxAbsDiff(ours, theirs) <= 1e-5, `differ by ${maxAbsDiff(ours, theirs)}`);
      const last = graph.steps[graph.steps.length - 1];
      const shift = Float32Array.from({ length: 10 }, (_, j) => j - 4.5);
      const shifted = tf.tidy(() => {
        const bias = tf.add(last.weights.get('bias')!.read(), tf.tensor1d(shift));
        const overrides: WeightOverrides = new Map([[`${last.layer}/bias`, bias]]);
        return forwardGraph(graph, x, overrides)[graph.outputSlot].dataSync() as Float32Array;
      });
      for (let i = 0; i < ours.length; i++) assert.ok(Math.abs(shifted[i] - ours[i] - shift[i % 10]) < 1e-5, `logit ${i}`);
      x.dispose();
    });
  });

  describe('backward.ts', function () {
    it("the seeded gradient at each wanted step's pre-activation gives that step's kernel gradient, as tf.grad does", function () {
      const model = poolNet();
      const graph = compileModel(model);
      const batch = 3;
      const x = tf.tensor(seeded(batch * 72, 5), [batch, 6, 6, 2]);
      const seed = tf.tensor2d(seeded(batch * 3, 6), [batch, 3]);
      const [conv, , , dense] = graph.steps;
      tf.tidy(() => {
        const values = forwardGraph(graph, x);
        const g = backwardGraph(graph, values, seed, 0, new Set([conv.index, dense.index]));
        assert.deepEqual([...g.keys()].sort(), [conv.index, dense.index]);
        // Dense: Σ_b a_bᵀ g_b; Conv2D: the filter gradient of ⟨conv(a, W), g⟩.
        const ours = {
          dense: tf.matMul(values[dense.inputs[0]] as tf.Tensor2D, g.get(dense.index) as tf.Tensor2D, true, false),
          conv: tf.grad((w: tf.Tensor) => tf.sum(tf.mul(convOp(values[conv.inputs[0]] as tf.Tensor4D, w as tf.Tensor4D, conv.conv as Conv2DSpec), g.get(conv.index)!)))(
            conv.weights.get('kernel')!.read(),
          ),
        };
        for (const [name, step] of [['dense', dense], ['conv', conv]] as const) {
          const kernel = step.weights.get('kernel')!.read();
          const want = tf.grad((w: tf.Tensor) => {
            const overrides: WeightOverrides = new Map([[`${step.layer}/kernel`, w]]);
            return tf.sum(tf.mul(forwardGraph(graph, x, overrides)[graph.outputSlot], seed));
          })(kernel);
          const a = ours[name].dataSync() as Float32Array;
          const b = want.dataSync() as Float32Array;
          assert.ok(maxAbs(b) > 1e-3, `${name}: the gradient is not trivially zero`);
          assert.ok(maxAbsDiff(a, b) <= 1e-5 * Math.max(1, maxAbs(b)), `${name}: differs by ${maxAbsDiff(a, b)}`);
        }
      });
      x.dispose();
      seed.dispose();
    });
  });

  describe('example-gradients.ts', function () {
    /** flatten → dense 'fc' (5 units) → dense 'output' (3): the per-example gradient of 'fc' from given a and d. */
    function denseCase() {
      const input = tfl.input({ shape: [2, 2, 1] });
      const flat = tfl.layers.flatten().apply(input) as tfl.SymbolicTensor;
      const fc = tfl.layers.dense({ units: 5, activation: 'relu', name: 'fc' }).apply(flat) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 3, name: 'output' }).apply(fc) as tfl.SymbolicTensor });
      const view = new ParameterView(model);
      const steps = viewSteps(compileModel(model), view);
      assert.deepEqual(steps.map((s) => [s.step.layer, s.kernel, s.bias]), [['fc', 0, 20], ['output', 25, 40]]);
      const a = Float32Array.from([0.5, 0, -1, 2, /* example 1: */ 0, 1.5, 0.25, -3]);
      const d = Float32Array.from([1, 0, 2, 0, -1, /* example 1: */ 0.5, 0, 0, -2, 4]);
      const inputs: StepInputs = { a, inShape: [2, 4], outShape: [2, 5], pad: [0, 0] };
      return { view, fc: steps[0], a, d, inputs };
    }

    it('a Dense step writes a_b ⊗ d_b and d_b over its own region only; the sparse path lists the same nonzeros', function () {
      const { view, fc, a, d, inputs } = denseCase();
      const row = new Float32Array(view.size).fill(NaN);
      writeExampleGradient(fc, inputs, d, 1, row);
      for (let p = 0; p < 4; p++) for (let q = 0; q < 5; q++) assert.ok(row[p * 5 + q] === a[4 + p] * d[5 + q], `kernel[${p}, ${q}] = ${row[p * 5 + q]}`);
      assert.deepEqual(Array.from(row.subarray(20, 25)), Array.from(d.subarray(5, 10)));
      assert.ok(row.subarray(25).every(Number.isNaN), "the other step's region is left alone");
      const index = new Int32Array(view.size);
      const value = new Float32Array(view.size);
      const count = appendDenseSparse(fc, inputs, d, 1, index, value, 0, new Int32Array(5));
      const dense = new Int32Array(view.size);
      const denseValue = new Float32Array(view.size);
      const expected = compressRange(row, 0, 25, dense, denseValue, 0);
      assert.equal(count, expected);
      assert.deepEqual(Array.from(index.subarray(0, count)), Array.from(dense.subarray(0, expected)));
      assert.deepEqual(Array.from(value.subarray(0, count)), Array.from(denseValue.subarray(0, expected)));
      writeExampleGradient(fc, inputs, undefined, 1, row);
      assert.ok(row.subarray(0, 25).every((v) => v === 0), 'no gradient reaching the step zeroes its region');
    });

    it("the addon's outer product writes the same Dense row as the JavaScript loop", function () {
      const kernels = nativeKernels();
      if (!kernels) assert.fail('the native addon is not built: run `npm run build:native` (it is built in CI, so a missing addon is a failure, not a skip)');
      const { view, fc, d, inputs } = denseCase();
      const js = new Float32Array(view.size);
      const native = new Float32Array(view.size);
      for (const b of [0, 1]) {
        writeExampleGradient(fc, inputs, d, b, js);
        writeExampleGradient(fc, { ...inputs, native: kernels }, d, b, native);
        assert.ok(maxAbsDiff(js.subarray(0, 25), native.subarray(0, 25)) <= 1e-6, `example ${b}`);
      }
    });
  });

  describe('rows.ts', function () {
    it('the margin rows of one MNIST image equal tf.grad of f_j − f_y for every wrong class', async function () {
      const view = new ParameterView(cnnlight);
      const image = mnist.images.subarray(0, 784);
      const y = mnist.labels[0];
      const rows = await marginRows(cnnlight, view, image, [y], { delta: 0.25, classes: 'all', format: 'dense' });
      assert.equal(rows.count, 9);
      const variables = view.entries.map((e) => cnnlight.getLayer(e.layer).trainableWeights.find((w) => w.originalName.endsWith(`/${e.name}`))!.read() as tf.Variable);
      const logits = predictLogits(cnnlight, image);
      for (let r = 0; r < rows.count; r++) {
        const j = rows.wrongClass[r];
        assert.notEqual(j, y);
        assert.ok(Math.abs(rows.value[r] - (logits[j] - logits[y] + 0.25)) < 1e-5, `value of row ${r}`);
        const { grads } = tf.variableGrads(() => {
          const out = tf.reshape(cnnlight.apply(tf.tensor(image, [1, 28, 28, 1]), { training: false }) as tf.Tensor, [-1]);
          return tf.sub(tf.gather(out, j), tf.gather(out, y)) as tf.Scalar;
        }, variables);
        const want = new Float32Array(view.size);
        view.entries.forEach((e, k) => want.set(grads[variables[k].name].dataSync() as Float32Array, e.offset));
        tf.dispose(Object.values(grads));
        assert.ok(maxAbs(want) > 1e-3, `row ${r} is not trivially zero`);
        assert.ok(maxAbsDiff(rows.dense![r], want) <= 1e-5 * Math.max(1, maxAbs(want)), `row ${r} (class ${j}) differs by ${maxAbsDiff(rows.dense![r], want)}`);
      }
    });
  });

  describe('inference.ts and loss.ts', function () {
    it('margins and cross-entropy from logits by hand', function () {
      const logits = Float32Array.from([1, 3, 2, 0, -1, 5]);
      assert.deepEqual(Array.from(marginsFromLogits(logits, [1, 2], 3)), [1, 5]);
      assert.deepEqual(Array.from(marginsFromLogits(logits, [0, 1], 3)), [-2, -6]);
      const lse = (v: number[]) => Math.log(v.reduce((s, x) => s + Math.exp(x), 0));
      const want = ((lse([1, 3, 2]) - 3) + (lse([0, -1, 5]) - 5)) / 2;
      assert.ok(Math.abs(crossEntropyFromLogits(logits, [1, 2], 3) - want) < 1e-12);
      assert.equal(crossEntropyFromLogits(new Float32Array(0), [], 3), 0);
    });

    it('on 4 MNIST images: async logits = sync logits, margins and cleanLoss agree with tfjs', async function () {
      const { images, labels } = mnist;
      const logits = predictLogits(cnnlight, images, { batchSize: 3 });
      assert.deepEqual(await predictLogitsAsync(cnnlight, images, { batchSize: 3 }), logits);
      assert.deepEqual(margins(cnnlight, images, labels), marginsFromLogits(logits, labels, 10));
      const want = tf.tidy(() => {
        const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
        return tf.losses.softmaxCrossEntropy(onehot, tf.tensor2d(logits, [4, 10])).dataSync()[0];
      });
      const loss = await cleanLoss(cnnlight, images, labels, { batchSize: 3 });
      assert.ok(Math.abs(loss - want) < 1e-5, `cleanLoss ${loss} vs tfjs ${want}`);
      await assert.rejects(cleanLoss(cnnlight, images, labels, { batchSize: 0 }), { name: 'RangeError', message: 'batchSize must be a positive integer' });
      await assert.rejects(cleanLoss(cnnlight, images.subarray(1), labels), {
        name: 'RangeError',
        message: "images has length 3135, not a multiple of the model's input size 784 (28×28×1)",
      });
    });
  });
});
