/**
 * The authors' PyTorch models (../shared/models) imported into tfjs: logits agree with a direct
 * NCHW loop implementation of the PyTorch modules computed from the raw .npz arrays, the MNIST test
 * accuracy is the authors', and exporting gives back the same arrays.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { packageRoot } from '../lib/native.js';
import { loadDataset, normalize, takeFirst, toTensors, type ImageDataset } from '../lib/data/index.js';
import { Random } from '../lib/data/random.js';
import { exportNpz, importNpz, readNpz, type ArchName, type NpyArray } from '../lib/models/index.js';

const shared = path.resolve(packageRoot, '..', 'shared');
const modelsDir = path.join(shared, 'models');
const FILES: Record<'cnnlight' | 'cnn' | 'resnet8', string> = {
  cnnlight: 'mnist_ConvNetLight_norm01.npz',
  cnn: 'mnist_ConvNet_norm01.npz',
  resnet8: 'cifar10_ResNet8_normDataAug.npz',
};

// ---- A direct PyTorch-semantics reference in float64, NCHW, one image at a time ----------------

interface Chw {
  c: number;
  h: number;
  w: number;
  v: Float64Array;
}

type Params = Map<string, NpyArray>;

function arr(params: Params, key: string): ArrayLike<number> {
  const a = params.get(key);
  if (!a) throw new Error(`reference: missing ${key}`);
  return a.data as ArrayLike<number>;
}

function conv2d(x: Chw, params: Params, key: string, stride: number, pad: number, bias: boolean): Chw {
  const shape = params.get(`${key}.weight`)!.shape;
  const [outC, inC, kh, kw] = shape;
  assert.equal(inC, x.c);
  const weight = arr(params, `${key}.weight`);
  const b = bias ? arr(params, `${key}.bias`) : undefined;
  const h = Math.floor((x.h + 2 * pad - kh) / stride) + 1;
  const w = Math.floor((x.w + 2 * pad - kw) / stride) + 1;
  const v = new Float64Array(outC * h * w);
  for (let o = 0; o < outC; o++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let sum = b ? b[o] : 0;
        for (let c = 0; c < inC; c++) {
          for (let u = 0; u < kh; u++) {
            const y = i * stride - pad + u;
            if (y < 0 || y >= x.h) continue;
            for (let t = 0; t < kw; t++) {
              const z = j * stride - pad + t;
              if (z < 0 || z >= x.w) continue;
              sum += weight[((o * inC + c) * kh + u) * kw + t] * x.v[(c * x.h + y) * x.w + z];
            }
          }
        }
        v[(o * h + i) * w + j] = sum;
      }
    }
  }
  return { c: outC, h, w, v };
}

function batchNorm(x: Chw, params: Params, key: string): Chw {
  const gamma = arr(params, `${key}.weight`);
  const beta = arr(params, `${key}.bias`);
  const mean = arr(params, `${key}.running_mean`);
  const variance = arr(params, `${key}.running_var`);
  const v = new Float64Array(x.v.length);
  const plane = x.h * x.w;
  for (let c = 0; c < x.c; c++) {
    const scale = gamma[c] / Math.sqrt(variance[c] + 1e-5);
    for (let p = 0; p < plane; p++) v[c * plane + p] = (x.v[c * plane + p] - mean[c]) * scale + beta[c];
  }
  return { ...x, v };
}

function relu<T extends { v: Float64Array }>(x: T): T {
  return { ...x, v: x.v.map((a) => (a > 0 ? a : 0)) };
}

function linear(x: Float64Array, params: Params, key: string): Float64Array {
  const [out, inp] = params.get(`${key}.weight`)!.shape;
  assert.equal(inp, x.length);
  const weight = arr(params, `${key}.weight`);
  const b = arr(params, `${key}.bias`);
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let sum = b[o];
    for (let i = 0; i < inp; i++) sum += weight[o * inp + i] * x[i];
    y[o] = sum;
  }
  return y;
}

function basicBlock(x: Chw, params: Params, prefix: string, stride: number): Chw {
  let y = relu(batchNorm(conv2d(x, params, `${prefix}.conv1`, stride, 1, false), params, `${prefix}.bn1`));
  y = batchNorm(conv2d(y, params, `${prefix}.conv2`, 1, 1, false), params, `${prefix}.bn2`);
  const shortcut = params.has(`${prefix}.downsample.0.weight`)
    ? batchNorm(conv2d(x, params, `${prefix}.downsample.0`, stride, 0, false), params, `${prefix}.downsample.1`)
    : x;
  return relu({ ...y, v: y.v.map((a, i) => a + shortcut.v[i]) });
}

function referenceLogits(arch: 'cnnlight' | 'cnn' | 'resnet8', params: Params, image: Chw): Float64Array {
  if (arch === 'resnet8') {
    let x = relu(batchNorm(conv2d(image, params, 'conv1', 1, 1, false), params, 'bn1'));
    x = basicBlock(x, params, 'layer1.0', 1);
    x = basicBlock(x, params, 'layer1.1', 1);
    x = basicBlock(x, params, 'layer2.0', 2);
    x = basicBlock(x, params, 'layer2.1', 1);
    x = basicBlock(x, params, 'layer3.0', 2);
    x = basicBlock(x, params, 'layer3.1', 1);
    const pooled = new Float64Array(x.c);
    const plane = x.h * x.w;
    for (let c = 0; c < x.c; c++) {
      let sum = 0;
      for (let p = 0; p < plane; p++) sum += x.v[c * plane + p];
      pooled[c] = sum / plane;
    }
    return linear(pooled, params, 'output');
  }
  let x = relu(conv2d(image, params, 'conv1', 2, 1, true));
  x = relu(conv2d(x, params, 'conv2', 2, 1, true));
  const hidden = relu({ v: linear(x.v, params, 'fc1') }).v; // x.view(B, -1): C,H,W order
  return linear(hidden, params, 'output');
}

/** Image n of an NHWC data set (values as given) as a C,H,W array. */
function toChw(images: Float32Array, n: number, h: number, w: number, c: number): Chw {
  const v = new Float64Array(c * h * w);
  for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) for (let k = 0; k < c; k++) v[(k * h + y) * w + z] = images[((n * h + y) * w + z) * c + k];
  return { c, h, w, v };
}

// ------------------------------------------------------------------------------------------------

describe('import of the authors\u2019 PyTorch models (.npz)', function () {
  let tmp: string;
  let mnist: ImageDataset;
  let previousBackend: string | undefined;

  before(async function () {
    if (!existsSync(path.join(modelsDir, FILES.cnn))) {
      console.log(`      (skipped: the authors' models are not in ${modelsDir}; this needs the project's shared/ folder)`);
      this.skip();
    }
    previousBackend = tf.getBackend();
    await tf.setBackend('cpu');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-npz-test-'));
    mnist = await loadDataset('mnist', 'test');
  });
  after(async () => {
    if (previousBackend && previousBackend !== 'cpu') await tf.setBackend(previousBackend);
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  for (const arch of ['cnnlight', 'cnn', 'resnet8'] as const) {
    it(`${arch}: tfjs logits equal a direct loop implementation of the PyTorch model`, async () => {
      const file = path.join(modelsDir, FILES[arch]);
      const loaded = await importNpz(file, arch);
      const params = await readNpz(file);
      if (arch === 'resnet8') for (const [k, v] of await readNpz(file.replace('.npz', '_bn_stats.npz'))) params.set(k, v);
      let inputs: Float32Array;
      let count: number;
      const [h, w, c] = loaded.inputShape;
      if (arch === 'resnet8') {
        // Any input will do to compare the two implementations: seeded random pixels, normalised.
        count = 2;
        const r = new Random(17);
        const pixels = Float32Array.from({ length: count * h * w * c }, () => r.next());
        inputs = normalize(pixels, loaded.normalization!, c);
      } else {
        count = 4;
        inputs = takeFirst(mnist, count).images;
      }
      const logits = (loaded.model.predict(tf.tensor4d(inputs, [count, h, w, c])) as tf.Tensor).dataSync();
      let worst = 0;
      for (let n = 0; n < count; n++) {
        const expected = referenceLogits(arch, params, toChw(inputs, n, h, w, c));
        for (let k = 0; k < 10; k++) {
          const err = Math.abs(logits[n * 10 + k] - expected[k]) / Math.max(1, Math.abs(expected[k]));
          worst = Math.max(worst, err);
        }
        // The logits are not trivial (a wrong layout would still give numbers).
        assert.ok(Math.max(...expected) - Math.min(...expected) > 1, `logit spread of image ${n}`);
      }
      assert.ok(worst < 1e-4, `largest (relative) logit difference ${worst}`);
      loaded.model.dispose();
    });
  }

  for (const [arch, minimum] of [
    // Full test set: 0.9781 and 0.9855 (docs/data-and-models.md); the first 2,000 images are a little harder.
    ['cnnlight', 0.96],
    ['cnn', 0.97],
  ] as const) {
    it(`${arch}: MNIST test accuracy of the imported model on 2,000 images is ≥ ${minimum}`, async () => {
      const loaded = await importNpz(path.join(modelsDir, FILES[arch]), arch);
      const { xs, ys } = toTensors(takeFirst(mnist, 2000));
      const correct = tf.tidy(() => tf.sum(tf.equal(tf.argMax(loaded.model.predict(xs, { batchSize: 500 }) as tf.Tensor, 1), ys)).dataSync()[0]);
      tf.dispose([xs, ys]);
      loaded.model.dispose();
      const accuracy = correct / 2000;
      console.log(`      ${arch} accuracy on the first 2,000 MNIST test images: ${accuracy}`);
      assert.ok(accuracy >= minimum, `accuracy ${accuracy}`);
    });
  }

  for (const arch of ['cnnlight', 'resnet8'] as const) {
    it(`${arch}: exporting the imported model gives back the authors' arrays exactly`, async () => {
      const file = path.join(modelsDir, FILES[arch]);
      const loaded = await importNpz(file, arch);
      const out = path.join(tmp, `${arch}.npz`);
      const written = await exportNpz(loaded.model, arch as ArchName, out);
      const pairs: Array<[string, string]> = [[file, out]];
      if (arch === 'resnet8') pairs.push([file.replace('.npz', '_bn_stats.npz'), written[1]]);
      for (const [original, exported] of pairs) {
        const a = await readNpz(original);
        const b = await readNpz(exported);
        assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
        for (const [key, value] of a) {
          if (key.endsWith('num_batches_tracked')) continue;
          assert.deepEqual(b.get(key)!.shape, value.shape, key);
          assert.deepEqual(b.get(key)!.data, value.data, key);
        }
      }
      loaded.model.dispose();
    });
  }
});
