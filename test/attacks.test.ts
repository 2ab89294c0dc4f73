import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { AdvcorrectError } from '../lib/errors.js';
import { loadDataset, type ImageDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { importNpz } from '../lib/models/io.js';
import { margins, predictLogits } from '../lib/models/index.js';
import { packageRoot } from '../lib/native.js';
import {
  evaluate,
  fgsm,
  generateAdversarialSet,
  loadAdversarialSet,
  pgd,
  pgdWithMargins,
  saveAdversarialSet,
} from '../lib/attacks/index.js';
import { maxAbsDiff } from './helpers/arrays.js';
import { trainTinyMnistModel } from './helpers/tiny-mnist.js';

const sharedModels = path.resolve(packageRoot, '..', 'shared', 'models');

function accuracy(model: tfl.LayersModel, images: Float32Array, labels: ArrayLike<number>): number {
  const logits = predictLogits(model, images);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < 10; j++) if (logits[i * 10 + j] > logits[i * 10 + best]) best = j;
    if (best === labels[i]) correct++;
  }
  return correct / labels.length;
}

function predictions(model: tfl.LayersModel, images: Float32Array): Int32Array {
  const logits = predictLogits(model, images);
  return Int32Array.from({ length: logits.length / 10 }, (_, i) => {
    let best = 0;
    for (let j = 1; j < 10; j++) if (logits[i * 10 + j] > logits[i * 10 + best]) best = j;
    return best;
  });
}

/**
 * The authors' CNNLight when /work/shared is present; otherwise a small dense net trained here on
 * 2,000 MNIST training images (a few seconds), so the attack tests always run on a real model.
 */
let cachedModel: Promise<{ model: tfl.LayersModel; source: string }> | undefined;
function realModel(): Promise<{ model: tfl.LayersModel; source: string }> {
  cachedModel ??= makeRealModel();
  return cachedModel;
}

async function makeRealModel(): Promise<{ model: tfl.LayersModel; source: string }> {
  const npz = path.join(sharedModels, 'mnist_ConvNetLight_norm01.npz');
  if (existsSync(npz)) return { model: (await importNpz(npz, 'cnnlight')).model, source: 'authors CNNLight' };
  const model = await trainTinyMnistModel(64, [1, 2]);
  return { model, source: 'dense net trained on 2,000 MNIST images' };
}

describe('attacks', function () {
  let model: tfl.LayersModel;
  let test: ImageDataset;
  let clean: number;

  before(async function () {
    await initBackend();
    ({ model } = await realModel());
    test = takeFirst(await loadDataset('mnist', 'test'), 200);
    clean = accuracy(model, test.images, test.labels);
    assert.ok(clean > 0.85, `the model is a real classifier (clean accuracy ${clean})`);
  });

  it('FGSM lowers accuracy and stays within ε and [0, 1]', async function () {
    const adv = await fgsm(model, test.images, test.labels, { eps: 0.1 });
    assert.ok(maxAbsDiff(adv, test.images) <= 0.1 + 1e-6);
    assert.ok(adv.every((v) => v >= 0 && v <= 1));
    const robust = accuracy(model, adv, test.labels);
    assert.ok(robust < clean - 0.2, `FGSM accuracy ${robust} vs clean ${clean}`);
    // The perturbation is a full ε step wherever the gradient is nonzero and the clip allows it.
    let moved = 0;
    for (let i = 0; i < adv.length; i++) if (Math.abs(Math.abs(adv[i] - test.images[i]) - 0.1) < 1e-6) moved++;
    assert.ok(moved > adv.length * 0.1);
  });

  it('without clipping, FGSM leaves [0, 1] but not the ε-ball', async function () {
    const adv = await fgsm(model, test.images, test.labels, { eps: 0.1, clip: false });
    assert.ok(maxAbsDiff(adv, test.images) <= 0.1 + 1e-6);
    assert.ok(adv.some((v) => v < 0), 'some black pixels are pushed below 0');
    const narrow = await fgsm(model, test.images, test.labels, { eps: 0.1, clip: [0.2, 0.8] });
    assert.ok(narrow.every((v, i) => v >= 0.2 - 1e-7 || v >= test.images[i] - 0.1 - 1e-6));
  });

  it('PGD is at least as strong as FGSM and respects ε and the clip range', async function () {
    const adv = await pgd(model, test.images, test.labels, { eps: 0.1, steps: 10, stepSize: 0.02, seed: 3 });
    assert.ok(maxAbsDiff(adv, test.images) <= 0.1 + 1e-6);
    assert.ok(adv.every((v) => v >= 0 && v <= 1));
    const fgsmAcc = accuracy(model, await fgsm(model, test.images, test.labels, { eps: 0.1 }), test.labels);
    const pgdAcc = accuracy(model, adv, test.labels);
    assert.ok(pgdAcc <= fgsmAcc + 0.01, `PGD ${pgdAcc} vs FGSM ${fgsmAcc}`);
  });

  it('PGD is reproducible with a seed; restarts never do worse than one run', async function () {
    const images = test.images.subarray(0, 50 * 784);
    const labels = test.labels.subarray(0, 50);
    const options = { eps: 0.08, steps: 5, stepSize: 0.02, seed: 11 };
    const a = await pgdWithMargins(model, images, labels, options);
    const b = await pgdWithMargins(model, images, labels, { ...options, batchSize: 17 });
    assert.deepEqual(a.images, b.images, 'same seed, other batch size: same result');
    const other = await pgd(model, images, labels, { ...options, seed: 12 });
    assert.ok(maxAbsDiff(other, a.images) > 0, 'another seed gives another start');
    const three = await pgdWithMargins(model, images, labels, { ...options, restarts: 3 });
    let strictlyBetter = 0;
    for (let i = 0; i < labels.length; i++) {
      assert.ok(three.margins[i] <= a.margins[i] + 1e-6, `example ${i}: ${three.margins[i]} > ${a.margins[i]}`);
      if (three.margins[i] < a.margins[i] - 1e-6) strictlyBetter++;
    }
    assert.ok(strictlyBetter > 0, 'extra restarts find a worse point for some example');
    const recomputed = margins(model, three.images, labels);
    for (let i = 0; i < labels.length; i++) assert.ok(Math.abs(recomputed[i] - three.margins[i]) < 1e-4);
  });

  it("labels 'pred' attacks the model's own predictions", async function () {
    const images = test.images.subarray(0, 40 * 784);
    const wrong = Uint8Array.from(test.labels.subarray(0, 40), (y) => (y + 3) % 10);
    const viaPred = await fgsm(model, images, wrong, { eps: 0.1, labels: 'pred' });
    const viaTrue = await fgsm(model, images, predictions(model, images), { eps: 0.1, labels: 'true' });
    assert.deepEqual(viaPred, viaTrue);
    const viaWrong = await fgsm(model, images, wrong, { eps: 0.1 });
    assert.ok(maxAbsDiff(viaWrong, viaPred) > 0);
  });

  it('targeted attacks move predictions to the targets', async function () {
    const n = 60;
    const images = test.images.subarray(0, n * 784);
    const labels = test.labels.subarray(0, n);
    const targets = Uint8Array.from(labels, (y) => (y + 1) % 10);
    const hits = (adv: Float32Array): number => predictions(model, adv).reduce((s, p, i) => s + (p === targets[i] ? 1 : 0), 0);
    const before = hits(images);
    const adv = await pgd(model, images, labels, { eps: 0.2, steps: 20, stepSize: 0.02, targets });
    assert.ok(maxAbsDiff(adv, images) <= 0.2 + 1e-6);
    assert.ok(hits(adv) > before + n / 3, `targets hit: ${hits(adv)} of ${n} (clean: ${before})`);
  });

  it('with a normalisation, ε and the clip range are converted per channel', async function () {
    const norm = { mean: [0.25], std: [0.5] };
    const normalised = test.images.subarray(0, 30 * 784).map((v) => (v - 0.25) / 0.5);
    const labels = test.labels.subarray(0, 30);
    const adv = await pgd(model, normalised, labels, { eps: 0.1, steps: 4, stepSize: 0.05, normalization: norm });
    assert.ok(maxAbsDiff(adv, normalised) <= 0.1 / 0.5 + 1e-6);
    assert.ok(maxAbsDiff(adv, normalised) > 0.1 + 1e-3, 'the ball in input units is wider than ε');
    assert.ok(adv.every((v) => v >= -0.5 - 1e-6 && v <= 1.5 + 1e-6), 'inside [(0 − mean)/std, (1 − mean)/std]');
    assert.ok(adv.some((v) => v < -0.5 + 1e-6), 'the lower clip bound is reached');
  });

  it('checks arguments and honours an abort signal', async function () {
    const images = test.images.subarray(0, 2 * 784);
    const labels = test.labels.subarray(0, 2);
    await assert.rejects(fgsm(model, images, labels, { eps: -1 }), { name: 'RangeError', message: 'eps must be a finite number ≥ 0' });
    await assert.rejects(fgsm(model, images.subarray(1), labels, { eps: 0.1 }), RangeError);
    await assert.rejects(fgsm(model, images, [1], { eps: 0.1 }), { name: 'RangeError', message: /labels has length 1, expected 2/ });
    await assert.rejects(pgd(model, images, labels, { eps: 0.1, restarts: 0 }), { name: 'RangeError', message: 'restarts must be an integer ≥ 1' });
    await assert.rejects(pgd(model, images, labels, { eps: 0.1, labels: 'x' as 'true' }), RangeError);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      pgd(model, images, labels, { eps: 0.1, signal: controller.signal }),
      (error: unknown) => error instanceof AdvcorrectError && error.code === 'ERR_ABORTED',
    );
  });

  it('evaluate reports clean, per-attack and worst-case accuracy consistently', async function () {
    const data = takeFirst(test, 100);
    const result = await evaluate(model, data, {
      attacks: [
        { name: 'fgsm', eps: 0.05 },
        { name: 'fgsm', eps: 0.1 },
        { name: 'pgd', eps: 0.1, steps: 5, stepSize: 0.025 },
      ],
    });
    assert.equal(result.n, 100);
    assert.equal(result.clean.accuracy, accuracy(model, data.images, data.labels));
    assert.equal(result.attacks.length, 3);
    const [f05, f10, p10] = result.attacks;
    assert.ok(f05.accuracy >= f10.accuracy, 'a larger ε does not help the model');
    // Robust accuracy: correct clean and at the attack's point (only clean-correct examples are attacked).
    const cleanPred = predictions(model, data.images);
    const advPred = predictions(model, await fgsm(model, data.images, data.labels, { eps: 0.1 }));
    const robustFgsm = data.labels.reduce((s, y, i) => s + (cleanPred[i] === y && advPred[i] === y ? 1 : 0), 0);
    assert.equal(f10.correct, robustFgsm);
    assert.equal(f10.attacked, result.clean.correct);
    assert.deepEqual([p10.steps, p10.stepSize, p10.restarts, p10.randomStart], [5, 0.025, 1, true]);
    assert.ok(result.worstCase.accuracy <= Math.min(result.clean.accuracy, ...result.attacks.map((a) => a.accuracy)));
    assert.equal(result.worstCase.correct, result.robust.reduce((s, v) => s + v, 0));
    assert.deepEqual(result.worstCase.byEps.map((e) => e.eps), [0.05, 0.1]);
    assert.ok(result.worstCase.byEps[0].accuracy <= f05.accuracy);
    assert.ok(result.worstCase.byEps[1].accuracy <= Math.min(f10.accuracy, p10.accuracy));
  });
});

describe('adversarial sets', function () {
  let model: tfl.LayersModel;
  let test: ImageDataset;
  let dir: string;

  before(async function () {
    await initBackend();
    ({ model } = await realModel());
    test = takeFirst(await loadDataset('mnist', 'test'), 300);
    dir = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-advset-'));
  });

  after(async function () {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps n per class, most violated first, and round-trips through IDX + JSON', async function () {
    const set = await generateAdversarialSet(model, test, { perClass: 3, attack: { name: 'fgsm', eps: 0.1 }, offset: 20, candidates: 250 });
    assert.equal(set.dataset.count, 30);
    for (let c = 0; c < 10; c++) {
      const group = Array.from({ length: 3 }, (_, k) => c * 3 + k);
      for (const k of group) {
        assert.equal(set.dataset.labels[k], c);
        assert.equal(test.labels[set.sourceIndex[k]], c);
        assert.ok(set.sourceIndex[k] >= 20 && set.sourceIndex[k] < 270);
      }
      assert.ok(set.margins[group[0]] <= set.margins[group[1]] && set.margins[group[1]] <= set.margins[group[2]]);
    }
    // The margins are those of the saved images, and the chosen ones are the lowest of their class.
    const recomputed = margins(model, set.dataset.images, set.dataset.labels);
    for (let k = 0; k < 30; k++) assert.ok(Math.abs(recomputed[k] - set.margins[k]) < 1e-4);
    const candidates = { images: test.images.subarray(20 * 784, 270 * 784), labels: test.labels.subarray(20, 270) };
    const all = margins(model, await fgsm(model, candidates.images, candidates.labels, { eps: 0.1 }), candidates.labels);
    for (let c = 0; c < 10; c++) {
      const classMargins = all.filter((_, i) => candidates.labels[i] === c).sort((a, b) => a - b);
      assert.ok(Math.abs(set.margins[c * 3 + 2] - classMargins[2]) < 1e-6);
    }
    for (let k = 0; k < 30; k++) {
      const i = set.sourceIndex[k];
      assert.ok(maxAbsDiff(set.dataset.images.subarray(k * 784, (k + 1) * 784), test.images.subarray(i * 784, (i + 1) * 784)) <= 0.1 + 1e-6);
    }
    await saveAdversarialSet(set, dir);
    assert.deepEqual((await readdir(dir)).sort(), ['images.idx', 'labels.idx', 'settings.json']);
    const loaded = await loadAdversarialSet(dir);
    assert.deepEqual(loaded.dataset.images, set.dataset.images);
    assert.deepEqual(loaded.dataset.labels, set.dataset.labels);
    assert.deepEqual(loaded.sourceIndex, set.sourceIndex);
    assert.deepEqual(loaded.margins, set.margins);
    assert.deepEqual(loaded.settings, set.settings);
    assert.equal(loaded.settings.attack.name, 'fgsm');
  });

  it('unsorted sets keep data set order; too few candidates of a class is a RangeError', async function () {
    const set = await generateAdversarialSet(model, test, { perClass: 2, attack: { name: 'pgd', eps: 0.1, steps: 2, stepSize: 0.05 }, sort: false, candidates: 200 });
    for (let c = 0; c < 10; c++) {
      const firstTwo = [...test.labels.subarray(0, 200).keys()].filter((i) => test.labels[i] === c).slice(0, 2);
      assert.deepEqual(Array.from(set.sourceIndex.subarray(c * 2, c * 2 + 2)), firstTwo);
    }
    await assert.rejects(generateAdversarialSet(model, test, { perClass: 5, candidates: 12, attack: { name: 'fgsm', eps: 0.1 } }), { name: 'RangeError', message: /class \d has only/ });
  });

  it('refuses inconsistent saved sets with ERR_DATA', async function () {
    const bad = path.join(dir, 'bad');
    const set = await generateAdversarialSet(model, test, { perClass: 1, attack: { name: 'fgsm', eps: 0.1 }, candidates: 100 });
    await saveAdversarialSet(set, bad);
    const settingsFile = path.join(bad, 'settings.json');
    const { readFile } = await import('node:fs/promises');
    const json = JSON.parse(await readFile(settingsFile, 'utf8'));
    json.count = 11;
    await writeFile(settingsFile, JSON.stringify(json));
    await assert.rejects(loadAdversarialSet(bad), (error: unknown) => error instanceof AdvcorrectError && error.code === 'ERR_DATA');
    await assert.rejects(loadAdversarialSet(path.join(dir, 'missing')), (error: unknown) => error instanceof AdvcorrectError && error.code === 'ERR_IO');
  });
});
