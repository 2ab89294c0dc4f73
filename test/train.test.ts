import assert from 'node:assert/strict';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset, shuffleIndices, subset, takeFirst, type ImageDataset } from '../lib/data/index.js';
import { Random } from '../lib/data/random.js';
import { AdvcorrectError } from '../lib/errors.js';
import { buildModel } from '../lib/models/architectures.js';
import { cropFlip, evaluateModel, trainModel } from '../lib/models/train.js';

describe('training', function () {
  let train: ImageDataset;
  let test: ImageDataset;

  before(async function () {
    await initBackend();
    const full = await loadDataset('mnist', 'train');
    train = subset(full, shuffleIndices(full.count, 7).subarray(0, 2000));
    test = takeFirst(await loadDataset('mnist', 'test'), 2000);
  });

  it('CNNLight on 2,000 MNIST images reaches ≥ 0.85 test accuracy in 3 epochs, loss falling every epoch', async function () {
    const model = buildModel('cnnlight', { seed: 3 });
    const before = await evaluateModel(model, test);
    assert.ok(before.accuracy < 0.3, `untrained accuracy ${before.accuracy}`);
    const progress: number[] = [];
    const result = await trainModel(model, train, {
      epochs: 3,
      batchSize: 32,
      learningRate: 3e-3,
      seed: 1,
      validation: takeFirst(test, 500),
      onProgress: (p) => progress.push(p.examples),
    });
    assert.equal(result.recipe, 'mnist');
    assert.equal(result.epochs.length, 3);
    for (let e = 1; e < 3; e++) assert.ok(result.epochs[e].loss < result.epochs[e - 1].loss, `loss rose at epoch ${e}`);
    // StepLR(γ = 0.7) per epoch.
    assert.ok(Math.abs(result.epochs[2].learningRate - 3e-3 * 0.49) < 1e-12);
    assert.ok(result.epochs[2].validation && result.epochs[2].validation.accuracy > 0.8);
    assert.equal(progress.length, 3 * Math.ceil(2000 / 32));
    assert.equal(progress[progress.length - 1], 6000);
    const after = await evaluateModel(model, test);
    assert.ok(after.accuracy >= 0.85, `test accuracy ${after.accuracy}`);
    assert.ok(after.loss < before.loss);
  });

  it('is repeatable for a seed and differs across seeds', async function () {
    const small = takeFirst(train, 256);
    const run = async (seed: number) => {
      const model = buildModel('cnnlight', { seed: 5 });
      const r = await trainModel(model, small, { epochs: 1, batchSize: 64, seed });
      const w = model.getWeights()[0].dataSync().slice();
      model.dispose();
      return { loss: r.epochs[0].loss, w };
    };
    const a = await run(11);
    const b = await run(11);
    const c = await run(12);
    assert.equal(a.loss, b.loss);
    assert.deepEqual(a.w, b.w);
    assert.notEqual(a.loss, c.loss);
  });

  it('stops with ERR_ABORTED when the signal fires, and checks its arguments', async function () {
    const model = buildModel('cnnlight', { seed: 1 });
    const controller = new AbortController();
    let batches = 0;
    await assert.rejects(
      trainModel(model, takeFirst(train, 640), {
        epochs: 5,
        signal: controller.signal,
        onProgress: () => {
          if (++batches === 2) controller.abort();
        },
      }),
      (error: unknown) => error instanceof AdvcorrectError && error.code === 'ERR_ABORTED',
    );
    assert.equal(batches, 2);
    await assert.rejects(trainModel(model, train, { epochs: 0 }), { name: 'RangeError', message: 'epochs must be a positive integer, got 0' });
    await assert.rejects(trainModel(model, train, { batchSize: 2.5 }), { name: 'RangeError', message: 'batchSize must be a positive integer, got 2.5' });
    await assert.rejects(trainModel(model, train, { recipe: 'imagenet' as never }), { name: 'RangeError' });
    await assert.rejects(trainModel({} as never, train), { name: 'TypeError', message: 'model must be a tfjs LayersModel' });
    const cifarShaped = buildModel('resnet8', { seed: 1 });
    await assert.rejects(trainModel(cifarShaped, train), { name: 'RangeError', message: /does not match the data's \[28, 28, 1\]/ });
    cifarShaped.dispose();
    model.dispose();
  });
});

describe('CIFAR-10 augmentation (cropFlip)', function () {
  it('is a reflect-padded shift, optionally mirrored, that keeps every pixel from the image', function () {
    const H = 5;
    const W = 6;
    const C = 2;
    const src = new Float32Array(H * W * C);
    for (let i = 0; i < src.length; i++) src[i] = i;
    const dst = new Float32Array(src.length);
    const random = new Random(4);
    let flips = 0;
    let shifted = 0;
    for (let trial = 0; trial < 200; trial++) {
      cropFlip(src, dst, H, W, C, 4, random);
      // Every output pixel is some input pixel with its channels intact.
      for (let p = 0; p < H * W; p++) {
        const v = dst[p * C];
        assert.equal(v % C, 0);
        assert.equal(dst[p * C + 1], v + 1);
      }
      // Rows move as a unit: within a row all pixels come from one source row (reflect keeps rows whole).
      const rowOf = (p: number) => Math.floor(dst[p * C] / (W * C));
      for (let r = 0; r < H; r++) for (let c = 1; c < W; c++) assert.equal(rowOf(r * W + c), rowOf(r * W));
      // Detect a mirror: in the middle row, columns decrease instead of increase (when not at a reflect fold).
      const colOf = (p: number) => (dst[p * C] / C) % W;
      const mid = 2 * W;
      if (colOf(mid + 2) - colOf(mid + 1) === -1 && colOf(mid + 3) - colOf(mid + 2) === -1) flips++;
      if (!dst.every((v, i) => v === src[i])) shifted++;
    }
    assert.ok(flips > 40 && flips < 160, `flips ${flips}`);
    assert.ok(shifted > 150);
    // Reflect padding (edge not repeated): a shift of −1 row maps output row 0 to input row 1.
    const fixed = { nextInt: (n: number) => (n === 9 ? 3 : 0), next: () => 0.9 } as unknown as Random;
    cropFlip(src, dst, H, W, C, 4, fixed); // dy = dx = −1, no flip
    assert.equal(dst[0], src[(1 * W + 1) * C]);
    assert.equal(dst[(1 * W + 1) * C], src[0]);
  });
});
