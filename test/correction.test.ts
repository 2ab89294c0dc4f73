import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { correct, defaultCutPool, dropInfeasible, type CorrectionState, type CutPoolLike, type CutRecord, type LabelledImages } from '../lib/correction/correct.js';
import { decodeBundle, encodeBundle, loadCheckpoint, replaceDirAtomic, saveCheckpoint } from '../lib/correction/checkpoint.js';
import { writeFileAtomic } from '../lib/util/files.js';
import { DEFAULT_CORRECTION_OPTIONS, resolveCorrectionOptions } from '../lib/correction/options.js';
import { chooseAnswer } from '../lib/correction/selection.js';
import { loadDataset, type ImageDataset } from '../lib/data/datasets.js';
import { cleanLoss, margins } from '../lib/models/index.js';

// ---------------------------------------------------------------------------------------------
// A small real setting: a tiny CNN trained here on 1,500 MNIST training images, 10 FGSM examples.

const SIZE = 28 * 28;

function slice(ds: ImageDataset, start: number, count: number): LabelledImages {
  return { images: ds.images.slice(start * SIZE, (start + count) * SIZE), labels: ds.labels.slice(start, start + count) };
}

function tinyCnn(seed: number): tfl.LayersModel {
  const model = tfl.sequential();
  model.add(
    tfl.layers.conv2d({
      name: 'conv1',
      inputShape: [28, 28, 1],
      filters: 4,
      kernelSize: 3,
      strides: 2,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tfl.initializers.glorotUniform({ seed }),
    }),
  );
  model.add(tfl.layers.flatten({ name: 'flatten' }));
  model.add(tfl.layers.dense({ name: 'fc', units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }));
  return model;
}

async function train(model: tfl.LayersModel, data: LabelledImages, epochs: number): Promise<void> {
  const n = data.labels.length;
  const x = tf.tensor4d(data.images, [n, 28, 28, 1]);
  const y = tf.oneHot(tf.tensor1d(Array.from(data.labels), 'int32'), 10);
  model.compile({ optimizer: tf.train.adam(0.01), loss: (t: tf.Tensor, p: tf.Tensor) => tf.losses.softmaxCrossEntropy(t, p) });
  await model.fit(x, y, { epochs, batchSize: 64, shuffle: false, verbose: 0 });
  x.dispose();
  y.dispose();
}

/** FGSM on the true labels (ε, clipped to [0, 1]); written here so the test needs no attack module. */
function fgsm(model: tfl.LayersModel, data: LabelledImages, eps: number): Float32Array {
  const n = data.labels.length;
  return tf.tidy(() => {
    const x = tf.tensor4d(data.images, [n, 28, 28, 1]);
    const y = tf.oneHot(tf.tensor1d(Array.from(data.labels), 'int32'), 10);
    const g = tf.grad((xx: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(xx) as tf.Tensor))(x);
    return tf.clipByValue(tf.add(x, tf.mul(tf.sign(g), eps)), 0, 1).dataSync() as Float32Array;
  });
}

/** 10 adversarial examples: FGSM on training images, the misclassified ones first. */
function adversarialSet(model: tfl.LayersModel, pool: LabelledImages, count: number, eps: number): LabelledImages {
  const attacked = fgsm(model, pool, eps);
  const m = margins(model, attacked, pool.labels);
  const order = Array.from(m.keys()).sort((a, b) => m[a]! - m[b]!).slice(0, count);
  const images = new Float32Array(count * SIZE);
  const labels = new Uint8Array(count);
  order.forEach((i, k) => {
    images.set(attacked.subarray(i * SIZE, (i + 1) * SIZE), k * SIZE);
    labels[k] = pool.labels[i]!;
  });
  return { images, labels };
}

function weightsOf(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((t) => t.dataSync() as Float32Array);
}

describe('correction: the cutting-plane loop on a small real setting', function () {
  this.timeout(120_000);
  let model: tfl.LayersModel;
  let clean: LabelledImages;
  let adversarial: LabelledImages;
  // The native cut pool, as in a real run: the addon is built in CI and a missing addon fails the test.
  const createPool = defaultCutPool;
  // One round (no regenerate here) and ω = 1: the answer is the least-violation point of the front (the full correction).
  const baseOptions = { delta: 1, maxIterations: 30, patience: 8, cutClasses: 'worst' as const, omega: 1, rounds: 1 };

  before(async function () {
    await initBackend();
    const ds = await loadDataset('mnist', 'train');
    model = tinyCnn(3);
    await train(model, slice(ds, 0, 1500), 3);
    clean = slice(ds, 1500, 500);
    adversarial = adversarialSet(model, slice(ds, 2000, 300), 10, 0.15);
  });

  it('drives every margin violation of X̃ to zero with the clean loss under η, leaving the input model untouched', async () => {
    const before = weightsOf(model);
    const events: string[] = [];
    const { model: corrected, result } = await correct(model, adversarial, clean, baseOptions, {
      createPool,
      onProgress: (e) => {
        events.push(e.kind);
        if (process.env.ADVCORRECT_TEST_DEBUG) console.error(JSON.stringify(e));
      },
    });
    assert.ok(result.adversarial.correctBefore < 10, 'the examples start misclassified');
    assert.equal(result.rounds[0]!.stopReason, 'converged');
    assert.equal(result.adversarial.correctAfter, 10);
    assert.equal(result.adversarial.violationAfter, 0);
    assert.ok(result.cleanLossAfter <= result.eta, `clean loss ${result.cleanLossAfter} ≤ η ${result.eta}`);
    assert.ok(Math.abs(result.eta - 1.05 * result.cleanLossBefore) < 1e-12);
    // Independent checks on the returned model.
    const m = margins(corrected, adversarial.images, adversarial.labels);
    for (const v of m) assert.ok(v >= baseOptions.delta - 1e-4, `margin ${v} ≥ δ`);
    const L = await cleanLoss(corrected, clean.images, clean.labels);
    assert.ok(Math.abs(L - result.cleanLossAfter) < 1e-5 && L <= result.eta + 1e-6);
    // Minimal change: non-zero but small compared with the weights.
    assert.ok(result.distance > 0 && result.relativeDistance < 0.5, `relative change ${result.relativeDistance}`);
    // The input model is untouched.
    weightsOf(model).forEach((w, i) => assert.deepEqual(w, before[i]));
    // Log and pool are consistent.
    assert.equal(events[0], 'start');
    assert.equal(events.filter((e) => e === 'iteration').length, result.iterations.length);
    assert.ok(result.pool.some((p) => p.id === result.chosen.id));
    for (const it of result.iterations) {
      assert.ok(it.cutsTotal >= it.cutsAdded);
      // The native dual solver solves every QP exactly.
      assert.ok(it.qpStatus.startsWith('solved'), it.qpStatus);
    }
    corrected.dispose();
  });

  it('a resumed run equals the uninterrupted run; cancellation leaves a valid checkpoint', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-ckpt-'));
    try {
      const options = { ...baseOptions, delta: 2, maxIterations: 6, patience: 10 };
      const full = await correct(model, adversarial, clean, options, { createPool });
      // Interrupt after iteration 3: abort from the progress callback, checkpoint after every iteration.
      const controller = new AbortController();
      let saved = 0;
      await assert.rejects(
        correct(model, adversarial, clean, options, {
          createPool,
          signal: controller.signal,
          onProgress: (e) => {
            if (e.kind === 'iteration' && e.iteration === 3) controller.abort();
          },
          onCheckpoint: async (state) => {
            await saveCheckpoint(dir, state);
            saved++;
          },
        }),
        (error: Error & { code?: string }) => error.code === 'ERR_ABORTED',
      );
      assert.equal(saved, 3);
      const state = (await loadCheckpoint(dir)) as CorrectionState;
      assert.equal(state.kind, 'advcorrect-correction-state');
      assert.equal(state.iteration, 3);
      assert.equal(state.log.length, 3);
      assert.ok(state.w instanceof Float64Array && state.w.length === full.state.parameterCount);
      // Resume: same iterations, same choices, same answer (QPs re-solved cold, so up to solver tolerance).
      const resumed = await correct(model, adversarial, clean, {}, { createPool, resume: state });
      assert.equal(resumed.result.resumed, true);
      assert.equal(resumed.result.iterations.length, full.result.iterations.length);
      resumed.result.iterations.forEach((it, i) => {
        const ref = full.result.iterations[i]!;
        assert.equal(it.alpha, ref.alpha, `iteration ${i + 1} step`);
        assert.equal(it.cutsTotal, ref.cutsTotal);
        assert.ok(Math.abs(it.violation - ref.violation) <= 1e-4 * (1 + ref.violation), `V ${it.violation} vs ${ref.violation}`);
        assert.ok(Math.abs(it.cleanLoss - ref.cleanLoss) <= 1e-6);
      });
      assert.equal(resumed.result.chosen.id, full.result.chosen.id);
      assert.ok(Math.abs(resumed.result.distance - full.result.distance) <= 1e-5 * (1 + full.result.distance));
      let maxDiff = 0;
      for (let i = 0; i < full.state.w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(resumed.state.w[i]! - full.state.w[i]!));
      assert.ok(maxDiff < 1e-5, `max |Δw| ${maxDiff}`);
      full.model.dispose();
      resumed.model.dispose();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('handles an infeasible QP by dropping the certificate support and continuing', async () => {
    let injected = false;
    const wrapped = (n: number): CutPoolLike => {
      const inner = createPool(n);
      return {
        get size() {
          return inner.size;
        },
        appendDense: (r, lower, upper) => inner.appendDense(r, lower, upper),
        appendSparse: (i, v, lower, upper) => inner.appendSparse(i, v, lower, upper),
        remove: (ids) => inner.remove(ids),
        dispose: () => inner.dispose?.(),
        solve: async (w0, o) => {
          const result = await inner.solve(w0, o);
          if (injected || inner.size < 4) return result;
          injected = true;
          // Pretend rows 0 and 1 (margin cuts) contradict each other.
          const certificate = new Float64Array(inner.size);
          certificate[0] = 1;
          certificate[1] = 0.5;
          return { ...result, status: 'primal_infeasible', certificate };
        },
      };
    };
    const { result } = await correct(model, adversarial, clean, { ...baseOptions, maxIterations: 4 }, { createPool: wrapped });
    assert.equal(result.infeasible.length, 1);
    assert.equal(result.infeasible[0]!.dropped, 2);
    assert.equal(result.iterations[0]!.cutsRemoved, 2);
    assert.equal(result.iterations[0]!.cutsTotal, result.iterations[0]!.cutsAdded - 2);
    assert.ok(result.iterations.length >= 1 && result.iterations[0]!.qpStatus.startsWith('solved'));
  });

  it('rejects mismatched model/data shapes and bad options with clear errors', async () => {
    const wrongSize = { images: new Float32Array(10 * 27 * 27), labels: adversarial.labels };
    await assert.rejects(correct(model, wrongSize, clean, {}, { createPool }), {
      name: 'RangeError',
      message: 'adversarial does not fit the model: 7290 pixel values for 10 labels, but the model takes 784 values per image (7840 expected)',
    });
    const badLabel = { images: adversarial.images, labels: Uint8Array.from(Array.from(adversarial.labels).map((_, i) => (i === 4 ? 12 : 0))) };
    await assert.rejects(correct(model, badLabel, clean, {}, { createPool }), {
      name: 'RangeError',
      message: 'adversarial.labels[4] = 12 is not a class of the model (0..9)',
    });
    await assert.rejects(correct(model, adversarial, { images: clean.images, labels: [] }, {}, { createPool }), { name: 'RangeError', message: 'cleanData is empty' });
    await assert.rejects(correct(model, adversarial, clean, { omega: 2 }, { createPool }), { name: 'RangeError', message: 'options.omega must be in [0, 1], got 2' });
    await assert.rejects(correct(model, adversarial, clean, { rounds: 2 }, { createPool }), {
      name: 'TypeError',
      message: 'options.rounds > 1 needs control.regenerate to make the adversarial examples of later rounds',
    });
    await assert.rejects(correct(model, adversarial, clean, { layers: ['nope'], rounds: 1 }, { createPool }), (e: Error) => e instanceof RangeError && /unknown layer 'nope'/.test(e.message));
    await assert.rejects(correct({} as tfl.LayersModel, adversarial, clean), { name: 'TypeError', message: 'model must be a tf.LayersModel' });
  });

  it('ω moves the answer along the final front: a smaller ω gives another model with more violation and less clean loss', async () => {
    const options = { ...baseOptions };
    const full = await correct(model, adversarial, clean, options, { createPool });
    const partial = await correct(model, adversarial, clean, { ...options, omega: 0.3 }, { createPool });
    try {
      // Each answer is the documented pick from its own run's front.
      for (const run of [full, partial]) {
        assert.ok(run.result.pool.some((p) => p.id === run.result.chosen.id));
        assert.equal(chooseAnswer(run.front, run.result.options.omega, run.result.eta).chosen.id, run.result.chosen.id);
        assert.ok(run.result.cleanLossAfter <= run.result.eta);
        // The closing segment was evaluated and recorded.
        assert.equal(run.result.candidates.filter((c) => c.segment).length, 1 + DEFAULT_CORRECTION_OPTIONS.segmentPoints);
      }
      const a = full.result.chosen;
      const b = partial.result.chosen;
      assert.notEqual(a.distance, b.distance);
      assert.ok(b.violation > a.violation, `V ${b.violation} at ω 0.3 > ${a.violation} at ω 1`);
      assert.ok(b.cleanLoss < a.cleanLoss, `L ${b.cleanLoss} at ω 0.3 < ${a.cleanLoss} at ω 1`);
      // The returned models differ, and each holds its chosen point (checked on the model itself).
      const wa = weightsOf(full.model);
      const wb = weightsOf(partial.model);
      let diff = 0;
      wa.forEach((w, i) => w.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - wb[i]![j]!)))));
      assert.ok(diff > 1e-4, `largest weight difference ${diff}`);
      const La = await cleanLoss(full.model, clean.images, clean.labels);
      const Lb = await cleanLoss(partial.model, clean.images, clean.labels);
      assert.ok(Math.abs(La - a.cleanLoss) < 1e-5 && Math.abs(Lb - b.cleanLoss) < 1e-5);
    } finally {
      full.model.dispose();
      partial.model.dispose();
    }
  });

  it('moves only the chosen layers', async () => {
    const before = weightsOf(model);
    const { model: corrected, result } = await correct(model, adversarial, clean, { ...baseOptions, layers: ['fc'] }, { createPool });
    assert.deepEqual(result.parameters.layers, ['fc']);
    const after = weightsOf(corrected);
    assert.deepEqual(after[0], before[0], 'conv1 kernel unchanged');
    assert.deepEqual(after[1], before[1], 'conv1 bias unchanged');
    assert.notDeepEqual(after[2], before[2], 'fc kernel moved');
    corrected.dispose();
  });
});

describe('correction: options', () => {
  it('defaults are the documented paper-like values', () => {
    const o = resolveCorrectionOptions();
    assert.equal(o.omega, 0.5);
    assert.equal(o.segmentPoints, 9);
    assert.equal(o.nAdversarial, 10);
    assert.equal(o.cleanSize, 2000);
    assert.deepEqual(o.attack, { eps: 0.1, stepSize: 0.01, steps: 40, randomStart: true, restarts: 1 });
    assert.deepEqual(o.alphas, [0.25, 0.5, 0.75, 1]);
    assert.equal(o.layers, 'all');
    assert.equal(o.rounds, 2);
    assert.notEqual(DEFAULT_CORRECTION_OPTIONS.alphas, o.alphas, 'a copy, not the frozen default');
  });

  it('validates every field with exact messages', () => {
    const cases: Array<[object, string, string]> = [
      [{ omega: -0.1 }, 'RangeError', 'options.omega must be in [0, 1], got -0.1'],
      [{ omega: '0.2' }, 'TypeError', 'options.omega must be a number'],
      [{ delta: -1 }, 'RangeError', 'options.delta must be a finite number ≥ 0, got -1'],
      [{ maxIterations: 0 }, 'RangeError', 'options.maxIterations must be an integer ≥ 1, got 0'],
      [{ rounds: 1.5 }, 'RangeError', 'options.rounds must be an integer ≥ 1, got 1.5'],
      [{ alphas: [] }, 'TypeError', 'options.alphas must be a non-empty array of numbers'],
      [{ alphas: [0.5, 0] }, 'RangeError', 'options.alphas[1] must be in (0, 1], got 0'],
      [{ cutClasses: 'some' }, 'TypeError', `options.cutClasses must be one of 'all', 'worst', got "some"`],
      [{ violation: 'max' }, 'TypeError', `options.violation must be one of 'sum', 'fraction', got "max"`],
      [{ solver: 'gurobi' }, 'TypeError', `options.solver must be one of 'dual', 'admm', got "gurobi"`],
      [{ layers: [] }, 'TypeError', "options.layers must be 'all' or a non-empty array of layer names"],
      [{ eta: 0 }, 'RangeError', 'options.eta must be a finite number > 0, got 0'],
      [{ qpTolerance: 2 }, 'RangeError', 'options.qpTolerance must be in (0, 1), got 2'],
      [{ attack: { eps: 0 } }, 'RangeError', 'options.attack.eps must be a finite number > 0, got 0'],
      [{ attack: { randomStart: 1 } }, 'TypeError', 'options.attack.randomStart must be a boolean'],
      [{ attack: { norm: 'l2' } }, 'TypeError', 'options.attack.norm is not an attack option'],
      [{ omgea: 0.2 }, 'TypeError', 'options.omgea is not a correction option'],
      [{ omega: 1.5 }, 'RangeError', 'options.omega must be in [0, 1], got 1.5'],
      [{ rounds: 0 }, 'RangeError', 'options.rounds must be an integer ≥ 1, got 0'],
      [{ segmentPoints: -1 }, 'RangeError', 'options.segmentPoints must be an integer ≥ 0, got -1'],
    ];
    for (const [input, name, message] of cases) assert.throws(() => resolveCorrectionOptions(input as never), { name, message }, JSON.stringify(input));
    assert.deepEqual(resolveCorrectionOptions({ alphas: [1, 0.5, 0.5] }).alphas, [0.5, 1], 'sorted, duplicates removed');
  });
});

describe('correction: checkpoints and atomic writes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-atomic-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('bundles round-trip typed arrays and non-finite numbers exactly', () => {
    const value = {
      a: Float64Array.from([1 / 3, -0, 1e-300]),
      b: [Float32Array.from([1.5, 2.5, 3.5]), Uint8Array.from([1, 2, 3])],
      c: { d: Int32Array.from([-1, 7]), e: Infinity, f: Number.NaN, g: 'text', h: null },
    };
    const { json, binary } = encodeBundle(value);
    assert.equal(binary.byteLength % 8, 0);
    const back = decodeBundle(json, binary) as typeof value;
    assert.deepEqual(back.a, value.a);
    assert.ok(Object.is(back.a[1], -0));
    assert.deepEqual(back.b[0], value.b[0]);
    assert.ok(back.b[1] instanceof Uint8Array);
    assert.deepEqual(back.c.d, value.c.d);
    assert.equal(back.c.e, Infinity);
    assert.ok(Number.isNaN(back.c.f));
  });

  it('saveCheckpoint/loadCheckpoint round-trip; damage and absence are reported', async () => {
    await saveCheckpoint(dir, { w: Float64Array.from([1, 2, 3]), iteration: 4 });
    await saveCheckpoint(dir, { w: Float64Array.from([4, 5, 6]), iteration: 5 });
    const state = (await loadCheckpoint(dir)) as { w: Float64Array; iteration: number };
    assert.deepEqual(state, { w: Float64Array.from([4, 5, 6]), iteration: 5 });
    assert.deepEqual(await fs.readdir(dir), ['checkpoint'], 'no temporary or old directories left');
    const bin = path.join(dir, 'checkpoint', 'arrays.bin');
    const bytes = await fs.readFile(bin);
    bytes[3] ^= 0xff;
    await fs.writeFile(bin, bytes);
    await assert.rejects(loadCheckpoint(dir), { code: 'ERR_PARSE', message: `The checkpoint in ${path.join(dir, 'checkpoint')} is damaged: arrays.bin does not match its checksum` });
    await assert.rejects(loadCheckpoint(path.join(dir, 'none')), (e: Error & { code?: string }) => e.code === 'ERR_IO' && /No checkpoint to resume/.test(e.message));
  });

  it('a failed directory replacement leaves the old contents intact', async () => {
    const target = path.join(dir, 'model');
    await replaceDirAtomic(target, async (tmp) => fs.writeFile(path.join(tmp, 'model.json'), 'old'));
    await assert.rejects(
      replaceDirAtomic(target, async (tmp) => {
        await fs.writeFile(path.join(tmp, 'model.json'), 'half');
        throw new Error('disk full');
      }),
      /disk full/,
    );
    assert.equal(await fs.readFile(path.join(target, 'model.json'), 'utf8'), 'old');
    assert.deepEqual(await fs.readdir(dir), ['model']);
    await writeFileAtomic(path.join(dir, 'x.json'), '{}');
    assert.deepEqual((await fs.readdir(dir)).sort(), ['model', 'x.json']);
  });

  it('the infeasibility rule drops the margin cuts of the certificate support, else the oldest loss cut', () => {
    const cuts: CutRecord[] = [
      { id: 1, point: 0, example: 0, cls: 3, inactive: 0 },
      { id: 2, point: 0, example: -1, cls: -1, inactive: 0 },
      { id: 3, point: 1, example: 1, cls: 2, inactive: 0 },
      { id: 4, point: 1, example: -1, cls: -1, inactive: 0 },
    ];
    assert.deepEqual(dropInfeasible(cuts, Float64Array.from([0.5, 1, 1e-14, 2])), [1]);
    assert.deepEqual(dropInfeasible(cuts, Float64Array.from([0, 1, 0, 2])), [2]);
    assert.deepEqual(dropInfeasible(cuts, Float64Array.from([0, 0, 0, 2])), [4]);
    assert.deepEqual(dropInfeasible(cuts, undefined), [3], 'no certificate: the newest margin cuts');
  });
});

describe('correction: CLI', function () {
  this.timeout(60_000);
  const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'lib', 'cli', 'main.js');

  async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const { spawn } = await import('node:child_process');
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('correct and demo have --help listing every correction option', async () => {
    for (const command of ['correct', 'demo']) {
      const { code, stdout } = await run([command, '--help']);
      assert.equal(code, 0);
      for (const flag of ['--n-adv', '--omega', '--delta', '--tau', '--iterations', '--alphas', '--rounds', '--cut-classes', '--layers', '--solver', '--seed', '--dump-qp', '--json']) {
        assert.ok(stdout.includes(flag), `${command} --help mentions ${flag}`);
      }
    }
    assert.ok((await run(['correct', '--help'])).stdout.includes('--resume'));
  });

  it('rejects bad arguments with a message and a non-zero exit code', async () => {
    const omega = await run(['correct', '--model', 'm.json', '--out', 'x', '--omega', '2']);
    assert.notEqual(omega.code, 0);
    assert.match(omega.stderr, /expected a number in \[0, 1\], got '2'/);
    const arch = await run(['correct', '--model', 'weights.npz', '--out', 'x']);
    assert.equal(arch.code, 2);
    assert.match(arch.stderr, /--arch is required for an \.npz model/);
    const resume = await run(['correct', '--resume', path.join(os.tmpdir(), 'advcorrect-no-such-run')]);
    assert.equal(resume.code, 1);
    assert.match(resume.stderr, /holds no run\.json: nothing to resume/);
  });
});
