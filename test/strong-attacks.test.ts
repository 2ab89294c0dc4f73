import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { AdvcorrectError } from '../lib/errors.js';
import { loadDataset, type ImageDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { importNpz } from '../lib/models/io.js';
import { margins, predictLogits } from '../lib/models/index.js';
import { packageRoot } from '../lib/native.js';
import { apgd, apgdCheckpoints, evaluate, pgdWithMargins, square, squareFraction, zeroGradientExamples } from '../lib/attacks/index.js';
import { maxAbsDiff } from './helpers/arrays.js';
import { trainTinyMnistModel } from './helpers/tiny-mnist.js';

const cnnLightFile = path.resolve(packageRoot, '..', 'shared', 'models', 'mnist_ConvNetLight_norm01.npz');

function correctFlags(model: tfl.LayersModel, images: Float32Array, labels: ArrayLike<number>): Uint8Array {
  const logits = predictLogits(model, images);
  const classes = logits.length / labels.length;
  return Uint8Array.from({ length: labels.length }, (_, i) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j] > logits[i * classes + best]) best = j;
    return best === labels[i] ? 1 : 0;
  });
}

function accuracy(model: tfl.LayersModel, images: Float32Array, labels: ArrayLike<number>): number {
  return correctFlags(model, images, labels).reduce((s, v) => s + v, 0) / labels.length;
}

/** Every value within ε of the clean image and inside [0, 1]. */
function assertInBall(adv: Float32Array, clean: Float32Array, eps: number): void {
  assert.ok(maxAbsDiff(adv, clean) <= eps + 1e-6, `max |δ| = ${maxAbsDiff(adv, clean)} > ε = ${eps}`);
  assert.ok(adv.every((v) => v >= 0 && v <= 1), 'inside [0, 1]');
}

/** A small dense net trained here on 2,000 MNIST training images (a few seconds). */
function trainTinyModel(): Promise<tfl.LayersModel> {
  return trainTinyMnistModel(48, [5, 6]);
}

/** Rounds its input to multiples of 1/2: a hard step whose gradient is zero everywhere (masks every gradient attack). */
class RoundInput extends tfl.layers.Layer {
  static className = 'RoundInput';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.div(tf.round(tf.mul(x, 2)), 2));
  }
  override computeOutputShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return shape;
  }
}

/** The same layers as `model` with {@link RoundInput} in front (shares its weights). */
function withRoundedInput(model: tfl.LayersModel): tfl.LayersModel {
  const input = tfl.input({ shape: [28, 28, 1] });
  let x = new RoundInput({}).apply(input) as tfl.SymbolicTensor;
  for (const layer of model.layers.slice(1)) x = layer.apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x });
}

/** The same layers as `model` followed by logits × 1000: the softmax saturates in float32, so the cross-entropy gradient is exactly zero. */
function withSaturatedLogits(model: tfl.LayersModel): tfl.LayersModel {
  const input = tfl.input({ shape: [28, 28, 1] });
  let x = input;
  for (const layer of model.layers.slice(1)) x = layer.apply(x) as tfl.SymbolicTensor;
  const scale = tfl.layers.dense({ units: 10, useBias: false });
  const out = scale.apply(x) as tfl.SymbolicTensor;
  const scaled = tfl.model({ inputs: input, outputs: out });
  scale.setWeights([tf.mul(tf.eye(10), 1000)]);
  return scaled;
}

describe('APGD and Square schedules', function () {
  it("APGD checks its step size at the paper's checkpoints", function () {
    // p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)).
    assert.deepEqual(apgdCheckpoints(100), [0, 22, 41, 57, 70, 80, 87, 93, 99]);
    assert.deepEqual(apgdCheckpoints(1000), [0, 220, 410, 570, 700, 800, 870, 930, 990]);
    // ⌈p·N⌉, duplicates dropped, only iterations before N.
    assert.deepEqual(apgdCheckpoints(10), [0, 3, 5, 6, 7, 8, 9]);
    assert.deepEqual(apgdCheckpoints(0), [0]);
    assert.throws(() => apgdCheckpoints(-1), { name: 'RangeError', message: 'steps must be an integer ≥ 0' });
  });

  it("Square halves p at the paper's iterations, rescaled to the budget", function () {
    assert.equal(squareFraction(0.8, 10, 10000), 0.8);
    assert.equal(squareFraction(0.8, 11, 10000), 0.4);
    assert.equal(squareFraction(0.8, 50, 10000), 0.4);
    assert.equal(squareFraction(0.8, 51, 10000), 0.2);
    assert.equal(squareFraction(0.8, 4000, 10000), 0.8 / 64);
    assert.equal(squareFraction(0.8, 9999, 10000), 0.8 / 512);
    // A budget of 1,000: iteration i behaves like iteration 10·i of 10,000.
    assert.equal(squareFraction(0.8, 1, 1000), 0.8);
    assert.equal(squareFraction(0.8, 2, 1000), 0.4);
    assert.equal(squareFraction(0.8, 801, 1000), 0.8 / 512);
  });
});

describe('APGD and Square on a small dense net trained here', function () {
  let model: tfl.LayersModel;
  let test: ImageDataset;

  before(async function () {
    await initBackend();
    model = await trainTinyModel();
    test = takeFirst(await loadDataset('mnist', 'test'), 100);
    assert.ok(accuracy(model, test.images, test.labels) > 0.8, 'a real classifier');
  });

  it('APGD-CE is at least as strong as PGD-40, stays in the ball, and is deterministic for a seed', async function () {
    const eps = 0.05;
    const pgdRun = await pgdWithMargins(model, test.images, test.labels, { eps, steps: 40, stepSize: 0.01, seed: 1 });
    const a = await apgd(model, test.images, test.labels, { eps, seed: 1 });
    assertInBall(a.images, test.images, eps);
    const pgdAcc = accuracy(model, pgdRun.images, test.labels);
    const apgdAcc = accuracy(model, a.images, test.labels);
    assert.ok(apgdAcc <= pgdAcc + 0.02, `APGD-CE ${apgdAcc} vs PGD-40 ${pgdAcc}`);
    assert.ok(apgdAcc < accuracy(model, test.images, test.labels) - 0.2, 'the attack works');
    const again = await apgd(model, test.images, test.labels, { eps, seed: 1 });
    assert.deepEqual(again.images, a.images, 'same seed: same points');
    assert.deepEqual(again.margins, a.margins);
    // Another batch size: the same random starts; logits of other batch shapes may differ in the last
    // float32 bits, which can flip a step-size decision on the odd example, so allow two of 100.
    const rebatched = await apgd(model, test.images, test.labels, { eps, seed: 1, batchSize: 37 });
    let differ = 0;
    for (let i = 0; i < test.count; i++) {
      const same = maxAbsDiff(rebatched.images.subarray(i * 784, (i + 1) * 784), a.images.subarray(i * 784, (i + 1) * 784)) === 0;
      if (!same) differ++;
      else assert.ok(Math.abs(rebatched.margins[i] - a.margins[i]) < 1e-4);
    }
    assert.ok(differ <= 2, `${differ} examples differ with another batch size`);
    const other = await apgd(model, test.images, test.labels, { eps, seed: 2 });
    assert.ok(maxAbsDiff(other.images, a.images) > 0, 'another seed, other random starts');
    const recomputed = margins(model, a.images, test.labels);
    for (let i = 0; i < test.count; i++) assert.ok(Math.abs(recomputed[i] - a.margins[i]) < 1e-4, `margin of example ${i}`);
  });

  it('Square with few queries breaks the undefended model, never leaves the ball, and is seeded', async function () {
    const eps = 0.1;
    const clean = accuracy(model, test.images, test.labels);
    const result = await square(model, test.images, test.labels, { eps, queries: 200, seed: 3 });
    assertInBall(result.images, test.images, eps);
    const robust = accuracy(model, result.images, test.labels);
    assert.ok(robust < clean - 0.3, `Square (200 queries) ${robust} vs clean ${clean}`);
    assert.ok(result.queries.every((q) => q >= 1 && q <= 200));
    // An example still correct has spent the whole budget.
    const correct = correctFlags(model, result.images, test.labels);
    for (let i = 0; i < test.count; i++) if (correct[i] && result.margins[i] > 0) assert.equal(result.queries[i], 200);
    // An example stops at its first negative margin: the successful ones spent less than the budget.
    assert.ok(result.queries.some((q, i) => result.margins[i] < 0 && q < 200));
    const again = await square(model, test.images, test.labels, { eps, queries: 200, seed: 3 });
    assert.deepEqual(again.images, result.images, 'same seed: same points');
    const other = await square(model, test.images, test.labels, { eps, queries: 200, seed: 4 });
    assert.ok(maxAbsDiff(other.images, result.images) > 0, 'another seed: another search');
    const recomputed = margins(model, result.images, test.labels);
    for (let i = 0; i < test.count; i++) assert.ok(Math.abs(recomputed[i] - result.margins[i]) < 1e-4);
  });

  it('warns about a model that masks its gradients (a hard rounding in front)', async function () {
    const masked = withRoundedInput(model);
    const data = takeFirst(test, 60);
    const zero = await zeroGradientExamples(masked, data.images, data.labels);
    assert.ok(zero.every((z) => z === 1), 'every input gradient is exactly zero');
    assert.ok((await zeroGradientExamples(model, data.images, data.labels)).every((z) => z === 0), 'the plain model has gradients');
    const result = await evaluate(masked, data, {
      attacks: [
        { name: 'fgsm', eps: 0.3 },
        { name: 'pgd', eps: 0.3, steps: 10, stepSize: 0.05 },
        { name: 'apgd-ce', eps: 0.3, steps: 10 },
        { name: 'square', eps: 0.3, queries: 300 },
      ],
    });
    const codes = result.warnings.map((w) => w.code);
    assert.deepEqual(codes, ['zero-gradients', 'gradient-free-stronger'], JSON.stringify(result.warnings));
    assert.equal(result.warnings[0].count, result.clean.correct);
    assert.deepEqual(result.zeroGradients, { checked: result.clean.correct, count: result.clean.correct });
    const [f, p, a, s] = result.attacks;
    assert.ok(s.accuracy < Math.min(f.accuracy, p.accuracy, a.accuracy), `square ${s.accuracy} beats the blinded gradient attacks`);
    assert.equal(result.warnings[1].eps, 0.3);
    assert.ok(result.warnings[1].count >= 1);
    assert.match(result.warnings[1].message, /square attack broke \d+ examples? that every gradient attack \(fgsm, pgd-10, apgd-ce-10\) left correct/);
  });

  it('flags saturated logits (zero cross-entropy gradients) while APGD-T, scale-invariant, still breaks examples', async function () {
    const saturated = withSaturatedLogits(model);
    const data = takeFirst(test, 60);
    const result = await evaluate(saturated, data, {
      attacks: [
        { name: 'apgd-ce', eps: 0.1, steps: 20 },
        { name: 'apgd-t', eps: 0.1, steps: 20, targets: 3 },
      ],
    });
    assert.equal(result.warnings[0]?.code, 'zero-gradients', JSON.stringify(result.warnings));
    assert.ok(result.warnings[0].count >= 0.5 * result.clean.correct, `zero gradients at ${result.warnings[0].count} of ${result.clean.correct}`);
    const [ce, t] = result.attacks;
    assert.ok(t.accuracy < ce.accuracy - 0.2, `APGD-T ${t.accuracy} vs APGD-CE ${ce.accuracy} on saturated logits`);
  });

  it('honours an abort signal, before and during a run', async function () {
    const images = test.images.subarray(0, 20 * 784);
    const labels = test.labels.subarray(0, 20);
    const isAbort = (error: unknown): boolean => error instanceof AdvcorrectError && error.code === 'ERR_ABORTED';
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(apgd(model, images, labels, { eps: 0.1, signal: aborted.signal }), isAbort);
    await assert.rejects(square(model, images, labels, { eps: 0.1, signal: aborted.signal }), isAbort);
    const during = new AbortController();
    await assert.rejects(
      apgd(model, images, labels, { eps: 0.01, loss: 'dlr-targeted', batchSize: 5, signal: during.signal, onProgress: () => during.abort() }),
      isAbort,
    );
    const during2 = new AbortController();
    await assert.rejects(square(model, images, labels, { eps: 0.01, batchSize: 5, signal: during2.signal, onProgress: () => during2.abort() }), isAbort);
    await assert.rejects(evaluate(model, takeFirst(test, 10), { attacks: [{ name: 'apgd-ce', eps: 0.1 }], signal: aborted.signal }), isAbort);
  });

  it('checks its arguments with exact messages', async function () {
    const images = test.images.subarray(0, 2 * 784);
    const labels = test.labels.subarray(0, 2);
    await assert.rejects(apgd(model, images, labels, { eps: 0.1, loss: 'dlr' as 'ce' }), { name: 'RangeError', message: "loss must be 'ce' or 'dlr-targeted'" });
    await assert.rejects(apgd(model, images, labels, { eps: 0.1, restarts: 0 }), { name: 'RangeError', message: 'restarts must be an integer ≥ 1' });
    await assert.rejects(apgd(model, images, labels, { eps: 0.1, targets: 0 }), { name: 'RangeError', message: 'targets must be a positive integer (the number of target classes)' });
    await assert.rejects(apgd(model, images, labels, { eps: -0.1 }), { name: 'RangeError', message: 'eps must be a finite number ≥ 0' });
    await assert.rejects(square(model, images, labels, { eps: 0.1, queries: 0 }), { name: 'RangeError', message: 'queries must be a positive integer' });
    await assert.rejects(square(model, images, labels, { eps: 0.1, pInit: 2 }), { name: 'RangeError', message: 'pInit must be a number in (0, 1]' });
    await assert.rejects(evaluate(model, takeFirst(test, 2), { attacks: [{ name: 'cw' as 'pgd', eps: 0.1 }] }), {
      name: 'RangeError',
      message: 'every attack needs a name among fgsm, pgd, apgd-ce, apgd-t, square',
    });
    await assert.rejects(evaluate(model, takeFirst(test, 2), { attacks: [{ name: 'square', eps: 0.1, queries: 1.5 }] }), {
      name: 'RangeError',
      message: 'attack square: queries must be an integer ≥ 1',
    });
  });
});

describe("APGD, APGD-T and Square on the authors' CNNLight", function () {
  let model: tfl.LayersModel;
  let test: ImageDataset;

  before(async function () {
    if (!existsSync(cnnLightFile)) {
      console.log(`      (skipped: the authors' CNNLight is not at ${cnnLightFile}; this needs the project's shared/ folder)`);
      this.skip();
    }
    await initBackend();
    model = (await importNpz(cnnLightFile, 'cnnlight')).model;
    test = takeFirst(await loadDataset('mnist', 'test'), 200);
  });

  it('APGD-CE is at least as strong as PGD-40; restarts never make it weaker', async function () {
    const eps = 0.1;
    const pgdAcc = accuracy(model, (await pgdWithMargins(model, test.images, test.labels, { eps, steps: 40, stepSize: 0.01 })).images, test.labels);
    const one = await apgd(model, test.images, test.labels, { eps, seed: 4 });
    assertInBall(one.images, test.images, eps);
    const apgdAcc = accuracy(model, one.images, test.labels);
    assert.ok(apgdAcc <= pgdAcc + 0.01, `APGD-CE ${apgdAcc} vs PGD-40 ${pgdAcc}`);
    const two = await apgd(model, test.images, test.labels, { eps, seed: 4, restarts: 2 });
    for (let i = 0; i < test.count; i++) assert.ok(two.margins[i] <= one.margins[i], `example ${i}: ${two.margins[i]} > ${one.margins[i]}`);
    assert.ok(accuracy(model, two.images, test.labels) <= apgdAcc);
  });

  it('APGD-T breaks examples that APGD-CE leaves correct, and stays in the ball', async function () {
    const eps = 0.1;
    const ce = await apgd(model, test.images, test.labels, { eps });
    const targeted = await apgd(model, test.images, test.labels, { eps, loss: 'dlr-targeted' });
    assertInBall(targeted.images, test.images, eps);
    const ceCorrect = correctFlags(model, ce.images, test.labels);
    const tCorrect = correctFlags(model, targeted.images, test.labels);
    let onlyTargeted = 0;
    for (let i = 0; i < test.count; i++) if (ceCorrect[i] && !tCorrect[i]) onlyTargeted++;
    assert.ok(onlyTargeted > 0, 'APGD-T finds adversarial examples APGD-CE misses');
    const tAcc = accuracy(model, targeted.images, test.labels);
    assert.ok(tAcc <= accuracy(model, ce.images, test.labels) + 0.01);
    // One target class (the highest wrong logit) is weaker than nine.
    const single = await apgd(model, test.images, test.labels, { eps, loss: 'dlr-targeted', targets: 1 });
    assert.ok(tAcc <= accuracy(model, single.images, test.labels));
  });

  it('evaluate: worst case ≤ every attack, attacks only clean-correct examples, no masking warning', async function () {
    const data = takeFirst(test, 100);
    const result = await evaluate(model, data, {
      attacks: [
        { name: 'fgsm', eps: 0.1 },
        { name: 'pgd', eps: 0.1 },
        { name: 'apgd-ce', eps: 0.1 },
        { name: 'apgd-t', eps: 0.1, targets: 20 },
        { name: 'square', eps: 0.1, queries: 1000 },
      ],
    });
    assert.equal(result.worstCase.label, 'worst of fgsm, pgd-40, apgd-ce, apgd-t, square-1000');
    assert.deepEqual(result.warnings, [], JSON.stringify(result.warnings));
    assert.deepEqual(result.zeroGradients, { checked: result.clean.correct, count: 0 });
    for (const a of result.attacks) {
      assert.equal(a.attacked, result.clean.correct);
      assert.ok(a.accuracy <= result.clean.accuracy);
      assert.ok(result.worstCase.accuracy <= a.accuracy, `worst case ${result.worstCase.accuracy} vs ${a.name} ${a.accuracy}`);
    }
    const [, pgdResult, ce, t, sq] = result.attacks;
    assert.equal(t.targets, 9, 'targets are capped at classes − 1');
    assert.ok(ce.accuracy <= pgdResult.accuracy + 0.01);
    assert.ok(sq.accuracy < 0.5 * result.clean.accuracy, `square ${sq.accuracy}`);
    assert.equal(result.worstCase.correct, result.robust.reduce((s, v) => s + v, 0));
  });
});
