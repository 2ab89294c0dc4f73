import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { nativeKernels } from '../lib/backend/native-kernels.js';
import { loadDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { Random } from '../lib/data/random.js';
import { AdvcorrectError } from '../lib/errors.js';
import { batchedMarginRows, forEachBatchedMarginRow } from '../lib/models/batched-rows.js';
import { marginRows, type MarginRowOptions, type MarginRows } from '../lib/models/index.js';
import { importNpz } from '../lib/models/io.js';
import { ParameterView } from '../lib/models/parameters.js';
import { maxAbs, maxAbsDiff } from './helpers/arrays.js';
import { trainTinyMnistModel } from './helpers/tiny-mnist.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const modelsDir = path.resolve(here, '..', '..', '..', 'shared', 'models');

/** Sets every weight (BN statistics included) to seeded values, variances in [0.5, 1.5). */
function seededWeights(model: tfl.LayersModel, seed: number): void {
  const rng = new Random(seed);
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const tensors = layer.weights.map((v) => {
      const values = new Float32Array((v.shape as number[]).reduce((a, b) => a * b, 1));
      const isVariance = v.name.includes('moving_variance');
      for (let i = 0; i < values.length; i++) values[i] = isVariance ? 0.5 + rng.next() : (rng.next() - 0.5) * 0.8;
      return tf.tensor(values, v.shape as number[]);
    });
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}

/** Padding layer fused into a valid conv, strided and 'same' convs, max pooling, ReLU layers, two dense layers. */
function smallConvNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [10, 10, 2] });
  let x = tfl.layers.zeroPadding2d({ padding: 1, name: 'pad' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu', name: 'c1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'c2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'r2' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.maxPooling2d({ poolSize: 2, name: 'mp' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.flatten({ name: 'flat' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: 7, activation: 'relu', name: 'd1' }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 4, name: 'd2' }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  seededWeights(model, 31);
  return model;
}

/** A residual block: conv without bias → BN → ReLU, a second conv → BN, Add, ReLU, global average pooling, dense. */
function smallResidualNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 3] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ epsilon: 1e-5, name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.activation({ activation: 'relu', name: 'a1' }).apply(x) as tfl.SymbolicTensor;
  let y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, name: 'c2' }).apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ epsilon: 1e-5, name: 'bn2' }).apply(y) as tfl.SymbolicTensor;
  let z = tfl.layers.add({ name: 'sum' }).apply([x, y]) as tfl.SymbolicTensor;
  z = tfl.layers.reLU({ name: 'a2' }).apply(z) as tfl.SymbolicTensor;
  z = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(z) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 5, name: 'out' }).apply(z) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  seededWeights(model, 32);
  return model;
}

function seededImages(count: number, size: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const images = new Float32Array(count * size);
  for (let i = 0; i < images.length; i++) images[i] = rng.next();
  return images;
}

/** Row r of a result as a dense array of length n (sparse rows scattered). */
function denseRow(rows: MarginRows, r: number, n: number): Float32Array {
  if (rows.dense) return rows.dense[r];
  const out = new Float32Array(n);
  const { index, value } = rows.sparse![r];
  for (let k = 0; k < index.length; k++) out[index[k]] = value[k];
  return out;
}

/** Same row metadata; every row within relative 1e-4 of the reference (max-norm); returns the worst ratio. */
function assertSameRows(got: MarginRows, want: MarginRows, n: number, what: string): number {
  assert.equal(got.count, want.count, `${what}: row count`);
  assert.deepEqual(got.example, want.example, `${what}: examples`);
  assert.deepEqual(got.wrongClass, want.wrongClass, `${what}: wrong classes`);
  let worst = 0;
  for (let r = 0; r < want.count; r++) {
    assert.ok(Math.abs(got.value[r] - want.value[r]) <= 1e-6 * (1 + Math.abs(want.value[r])), `${what}: value of row ${r}`);
    const reference = denseRow(want, r, n);
    const scale = maxAbs(reference);
    assert.ok(scale > 0, `${what}: row ${r} of the reference is zero`);
    const ratio = maxAbsDiff(denseRow(got, r, n), reference) / scale;
    worst = Math.max(worst, ratio);
    assert.ok(ratio <= 1e-4, `${what}: row ${r} differs by ${ratio.toExponential(2)} of its largest entry`);
  }
  return worst;
}

async function compareAll(model: tfl.LayersModel, images: Float32Array, labels: ArrayLike<number>, what: string, batchSize?: number): Promise<void> {
  const view = new ParameterView(model);
  for (const classes of ['worst', 'all'] as const) {
    for (const format of ['dense', 'sparse'] as const) {
      const options: MarginRowOptions = { delta: 0.25, classes, format, ...(batchSize ? { batchSize } : {}) };
      const want = await marginRows(model, view, images, labels, options);
      const got = await batchedMarginRows(model, view, images, labels, options);
      assertSameRows(got, want, view.size, `${what} (${classes}, ${format})`);
    }
  }
}

describe('batched margin rows', function () {
  this.timeout(300_000);

  before(async function () {
    await initBackend();
  });

  it('a small dense MNIST net: the rows of marginRows, worst and all classes, dense and sparse', async function () {
    const model = await trainTinyMnistModel(24, [5, 6]);
    const test = takeFirst(await loadDataset('mnist', 'test'), 12);
    // batch 5: the last batch is a partial one
    await compareAll(model, test.images, test.labels, 'dense net', 5);
    model.dispose();
  });

  it('conv layers (fused padding, strides, same padding, max pooling) and a residual block (BN, Add, global average pooling)', async function () {
    const conv = smallConvNet();
    await compareAll(conv, seededImages(7, 200, 1), [0, 1, 2, 3, 0, 1, 2], 'conv net', 4);
    conv.dispose();
    const residual = smallResidualNet();
    await compareAll(residual, seededImages(6, 108, 2), [4, 3, 2, 1, 0, 4], 'residual net');
    residual.dispose();
  });

  it('only some layers in the view: their blocks alone, at their offsets', async function () {
    const model = smallResidualNet();
    const view = new ParameterView(model, ['bn2', 'out']);
    const images = seededImages(3, 108, 3);
    const options: MarginRowOptions = { delta: 0, classes: 'all', format: 'dense' };
    const want = await marginRows(model, view, images, [0, 1, 2], options);
    const got = await batchedMarginRows(model, view, images, [0, 1, 2], options);
    assertSameRows(got, want, view.size, 'bn2 + out');
    model.dispose();
  });

  it('the visitor variant hands out the same rows in a reused buffer', async function () {
    const model = smallConvNet();
    const view = new ParameterView(model);
    const images = seededImages(5, 200, 4);
    const labels = [3, 2, 1, 0, 3];
    const options: MarginRowOptions = { delta: 0, classes: 'all', format: 'dense', batchSize: 2 };
    const want = await marginRows(model, view, images, labels, options);
    const seen = new Map<number, Float32Array>();
    const meta = await forEachBatchedMarginRow(model, view, images, labels, options, (row) => seen.set(row.row, row.dense!.slice()));
    assert.equal(meta.dense, undefined);
    assert.equal(seen.size, want.count);
    assertSameRows({ ...meta, dense: Array.from({ length: want.count }, (_, r) => seen.get(r)!) }, want, view.size, 'visitor');
    model.dispose();
  });

  it('refuses bad arguments, and js kernels with ERR_UNSUPPORTED so the caller falls back explicitly', async function () {
    const model = smallConvNet();
    const view = new ParameterView(model);
    const images = seededImages(2, 200, 5);
    await assert.rejects(batchedMarginRows(model, view, images, [0, 1], { delta: 0, classes: 'worst', format: 'dense', kernels: 'js' }), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_UNSUPPORTED');
    await assert.rejects(batchedMarginRows(model, view, images, [0, 1], { delta: -1, classes: 'worst', format: 'dense' }), { name: 'RangeError', message: 'delta must be a finite number ≥ 0' });
    await assert.rejects(batchedMarginRows(model, view, images, [0, 9], { delta: 0, classes: 'worst', format: 'dense' }), { name: 'RangeError', message: 'labels[1] = 9 is not a class index in [0, 4)' });
    await assert.rejects(batchedMarginRows(model, view, images.subarray(1), [0, 1], { delta: 0, classes: 'worst', format: 'dense' }), RangeError);
    const other = smallConvNet();
    await assert.rejects(batchedMarginRows(other, view, images, [0, 1], { delta: 0, classes: 'worst', format: 'dense' }), { name: 'RangeError', message: 'view was made for another model' });
    other.dispose();
    model.dispose();
  });

  it('the binding checks the row matrix and the blocks (RangeError), the kernel rejects a block past the row end', function () {
    const k = nativeKernels();
    const x = new Float32Array([1, 2]);
    const dy = new Float32Array([3, 4, 5]);
    assert.throws(() => k.denseExampleGradients!(x, dy, new Float32Array(7), 1, 2, 3, 8, 0, 6), {
      name: 'RangeError',
      message: 'rows has 7 elements, the shape needs 8',
    });
    assert.throws(() => k.denseExampleGradients!(x, dy, new Float32Array(8), 1, 2, 3, 8, 0, 6), (e: unknown) => (e as { code?: string }).code === 'ERR_NATIVE');
    const rows = new Float32Array(9).fill(-1);
    k.denseExampleGradients!(x, dy, rows, 1, 2, 3, 9, 0, 6);
    assert.deepEqual([...rows], [3, 4, 5, 6, 8, 10, 3, 4, 5]);
  });

  describe("the authors' models (../shared)", function () {
    before(function () {
      if (!existsSync(modelsDir)) {
        console.log(`      skipped: the authors' models are not in ${modelsDir}`);
        this.skip();
      }
    });

    for (const [arch, file] of [['cnnlight', 'mnist_ConvNetLight_norm01.npz'], ['cnn', 'mnist_ConvNet_norm01.npz']] as const) {
      it(`${arch} on 8 MNIST test images: the rows of marginRows`, async function () {
        const { model } = await importNpz(path.join(modelsDir, file), arch);
        const test = takeFirst(await loadDataset('mnist', 'test'), 8);
        await compareAll(model, test.images, test.labels, arch);
        model.dispose();
      });
    }

    it('resnet8 on 4 CIFAR-10 test images: the rows of marginRows (worst class)', async function () {
      const { model } = await importNpz(path.join(modelsDir, 'cifar10_ResNet8_normDataAug.npz'), 'resnet8');
      const test = takeFirst(await loadDataset('cifar10', 'test'), 4);
      const view = new ParameterView(model);
      const options: MarginRowOptions = { delta: 0, classes: 'worst', format: 'dense' };
      const want = await marginRows(model, view, test.images, test.labels, options);
      const got = await batchedMarginRows(model, view, test.images, test.labels, options);
      assertSameRows(got, want, view.size, 'resnet8');
      model.dispose();
    });
  });
});
