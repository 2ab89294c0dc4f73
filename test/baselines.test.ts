import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset, type ImageDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { buildModel } from '../lib/models/architectures.js';
import { loadModel, saveModel, type LoadedModel } from '../lib/models/io.js';
import { ParameterView } from '../lib/models/parameters.js';
import { accuracy, biasShift, correctness, finetune, findShiftTarget, pgdFinetune, trainStep } from '../lib/baselines/index.js';
import { drawAdversarial, trainingSplit, type DrawSettings } from '../lib/runs/index.js';
import { packageRoot } from '../lib/native.js';

const cnnLight = path.resolve(packageRoot, '..', 'shared', 'models', 'mnist_ConvNetLight_norm01.npz');
const cli = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');

function needShared(ctx: Mocha.Context): void {
  if (!existsSync(cnnLight)) {
    console.log(`      (skipped: the authors' CNNLight is not in ${path.dirname(cnnLight)}; this needs the project's shared/ folder)`);
    ctx.skip();
  }
}

export function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const DRAW: DrawSettings = {
  seed: 1,
  cleanSize: 500,
  nAdversarial: 10,
  attack: { eps: 0.1, steps: 20, stepSize: 0.01, restarts: 1, randomStart: true },
  advCandidates: 200,
  advOffset: 0,
  advLabels: 'true',
  clip: true,
  rounds: 1,
};

describe('baselines: library on real MNIST', function () {
  this.timeout(180_000);
  let train: ImageDataset;
  let test: ImageDataset;

  before(async function () {
    await initBackend();
    [train, test] = await Promise.all([loadDataset('mnist', 'train'), loadDataset('mnist', 'test')]);
  });

  async function authors(ctx: Mocha.Context): Promise<LoadedModel> {
    needShared(ctx);
    return loadModel(cnnLight, { arch: 'cnnlight' });
  }

  it('bias-shift matches a target clean accuracy within one image and shifts exactly the conv1 biases', async function () {
    const loaded = await authors(this);
    const data = takeFirst(test, 1000);
    const base = await accuracy(loaded.model, data);
    const view = new ParameterView(loaded.model);
    const w0 = view.read();
    const target = base - 0.03;
    const r = await biasShift(loaded.model, data, { targetAccuracy: target });
    assert.equal(r.target.layer, 'conv1');
    assert.equal(r.target.tensor, 'bias');
    assert.ok(r.shift > 0, 'a positive shift');
    assert.ok(r.matched, `accuracy ${r.accuracy} within 1/1000 of ${target}`);
    assert.ok(r.accuracy >= target - 1e-12 && r.accuracy - target <= 1 / 1000 + 1e-12);
    // Measured again independently: the model now has that accuracy, and only conv1's biases moved, by −shift.
    assert.equal(await accuracy(loaded.model, data), r.accuracy);
    const w = view.read();
    const bias = view.entry('conv1', 'bias')!;
    for (let i = 0; i < w.length; i++) {
      const inBias = i >= bias.offset && i < bias.offset + bias.size;
      assert.ok(Math.abs(w[i]! - (inBias ? w0[i]! - r.shift : w0[i]!)) < 1e-6, `parameter ${i}`);
    }
    loaded.model.dispose();
  });

  it("bias-shift moves bn1's β for ResNet8 and refuses a model with neither a first-layer bias nor a BatchNormalization after it", () => {
    const resnet = buildModel('resnet8', { seed: 1 });
    assert.deepEqual({ ...findShiftTarget(resnet), reason: undefined }, { layer: 'bn1', tensor: 'beta', reason: undefined });
    resnet.dispose();
    const bare = tfl.sequential({
      layers: [tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 2, kernelSize: 3, useBias: false, name: 'conv1' }), tfl.layers.flatten(), tfl.layers.dense({ units: 10 })],
    });
    assert.throws(() => findShiftTarget(bare), { name: 'RangeError', message: "bias-shift does not apply: the first layer 'conv1' has no bias and is not followed by a BatchNormalization" });
    bare.dispose();
  });

  it('finetune on the X̃ that correct draws fixes X̃ within the epoch cap', async function () {
    const loaded = await authors(this);
    const split = trainingSplit(train, DRAW);
    const adversarial = await drawAdversarial(loaded, split.candidates(1), DRAW, 1);
    assert.equal(adversarial.count, 10);
    const before = await correctness(loaded.model, adversarial);
    assert.ok(before.reduce((s, v) => s + v, 0) < 10, 'X̃ is misclassified before');
    const r = await finetune(loaded.model, adversarial, split.clean, { maxEpochs: 15, learningRate: 1e-3 });
    assert.equal(r.reached, true, `fixed after ${r.epochs} epochs`);
    assert.equal(r.advCorrectAfter, 10);
    assert.deepEqual([...(await correctness(loaded.model, adversarial))], new Array(10).fill(1));
    loaded.model.dispose();
  });

  it('pgd-finetune stops within its budget and lowers the adversarial loss', async function () {
    const loaded = await authors(this);
    const split = trainingSplit(train, DRAW);
    const images = takeFirst(split.clean, 320);
    const r = await pgdFinetune(loaded.model, images, {
      budgetMs: 6000,
      attack: { eps: 0.1, steps: 10, stepSize: 0.025, randomStart: true },
      clip: true,
      learningRate: 1e-3,
      probe: takeFirst(split.candidates(1), 100),
    });
    assert.ok(r.batches > 1, `${r.batches} batches`);
    // Structural bound: a batch starts only if the slowest batch so far would finish within the budget.
    assert.ok(r.trainTimeMs <= r.budgetMs + r.maxBatchMs, `${r.trainTimeMs} ms ≤ ${r.budgetMs} + ${r.maxBatchMs}`);
    assert.ok(r.adversarialLossAfter < r.adversarialLossBefore, `adversarial loss ${r.adversarialLossBefore} → ${r.adversarialLossAfter}`);
    loaded.model.dispose();
  });
});

describe('baselines: training keeps BatchNorm in inference mode, as the correction does', function () {
  it('trainStep moves γ/β and the other weights but never the running statistics', async () => {
    await initBackend();
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: 'same', useBias: false }),
        tfl.layers.batchNormalization(),
        tfl.layers.activation({ activation: 'relu' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3 }),
      ],
    });
    const bn = model.layers[1]!;
    const stats = () => bn.getWeights().slice(2).map((t) => Array.from(t.dataSync()));
    const trainable = () => model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
    const statsBefore = stats();
    const weightsBefore = trainable();
    const images = Float32Array.from({ length: 6 * 64 }, (_, i) => ((i * 7919) % 97) / 97);
    const labels = Int32Array.from([0, 1, 2, 0, 1, 2]);
    const optimizer = tf.train.adam(0.05);
    for (let k = 0; k < 3; k++) trainStep(model, optimizer, images, labels, [8, 8, 1], 3);
    assert.deepEqual(stats(), statsBefore, 'the moving mean/variance changed');
    const weightsAfter = trainable();
    assert.ok(weightsAfter.every((w, i) => w.some((v, j) => v !== weightsBefore[i]![j])), 'some trainable weight (γ, β among them) did not move');
  });
});

describe('baselines: CLI', function () {
  this.timeout(300_000);
  let dir: string;

  before(async function () {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-baseline-cli-'));
  });

  after(async function () {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  async function expectUsageError(args: string[], message: RegExp, out: string): Promise<void> {
    const r = await run(args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').filter((l) => !l.startsWith('(run with --help')).length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(out), false, 'nothing written');
  }

  it('refuses an unknown method, a --match-clean directory without result.json and a model without a first-layer bias (exit 2, one line, nothing written)', async () => {
    const out = path.join(dir, 'never');
    await expectUsageError(['baseline', '--method', 'dropout', '--model', 'm.json', '--out', out], /unknown method 'dropout' \(expected one of bias-shift, finetune, pgd-finetune\)/, out);
    const empty = path.join(dir, 'empty');
    await fs.mkdir(empty);
    await expectUsageError(['baseline', '--method', 'bias-shift', '--model', 'm.json', '--out', out, '--match-clean', empty], /--match-clean: .*empty holds no result\.json/, out);
    await expectUsageError(['baseline', '--method', 'bias-shift', '--model', 'm.json', '--out', out], /bias-shift needs one of --target-clean A or --match-clean DIR/, out);
    await expectUsageError(['baseline', '--method', 'finetune', '--model', 'm.json', '--out', out, '--budget-s', '3'], /--budget-s applies to pgd-finetune only/, out);
    await expectUsageError(['baseline', '--method', 'finetune', '--model', 'm.json', '--out', out, '--attacks', 'fgsm,cw'], /unknown attack 'cw'/, out);
    await initBackend();
    const bare = tfl.sequential({
      layers: [tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 2, kernelSize: 3, useBias: false, name: 'conv1' }), tfl.layers.flatten(), tfl.layers.dense({ units: 10 })],
    });
    const modelDir = path.join(dir, 'nobias');
    await saveModel(bare, modelDir);
    await expectUsageError(['baseline', '--method', 'bias-shift', '--model', modelDir, '--out', out, '--target-clean', '0.5'], /bias-shift does not apply: the first layer 'conv1' has no bias/, out);
  });

  it('bias-shift end to end writes the same files as correct, and compare groups draws and refuses other test images', async function () {
    needShared(this);
    const common = ['--model', cnnLight, '--arch', 'cnnlight', '--eval-n', '300', '--pgd-n', '40', '--pgd-steps', '10', '--attacks', 'fgsm,pgd,apgd-ce', '--apgd-steps', '10', '--sweep', '0.05,0.1', '--quiet'];
    const a = path.join(dir, 'shift-a');
    const b = path.join(dir, 'shift-b');
    const r = await run(['baseline', '--method', 'bias-shift', '--target-clean', '0.95', '--out', a, ...common, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.kind, 'baseline');
    assert.equal(doc.method, 'bias-shift');
    assert.equal(doc.methodResult.searchN, 300, 'searched on the --eval-n test images');
    assert.ok(Math.abs(doc.after.clean.accuracy - 0.95) <= 1 / 300 + 1e-12, `clean ${doc.after.clean.accuracy}`);
    assert.equal(doc.after.clean.accuracy, doc.methodResult.searchAccuracy);
    assert.equal(doc.after.worstCase.label, 'worst of fgsm, pgd-10, apgd-ce-10');
    assert.deepEqual(doc.after.attacks.map((x: { label: string }) => x.label), ['fgsm', 'pgd-10', 'apgd-ce-10']);
    // The worst case is per image on the first 40 (where PGD ran too): never above PGD's accuracy there.
    assert.equal(doc.after.worstCase.n, 40);
    assert.ok(doc.after.worstCase.accuracy <= Math.min(doc.after.attacks[1].accuracy, doc.after.attacks[2].accuracy));
    for (const f of ['model/model.json', 'model.npz', 'result.json', 'report.html']) assert.ok(existsSync(path.join(a, f)), f);
    assert.deepEqual(JSON.parse(await fs.readFile(path.join(a, 'result.json'), 'utf8')).methodResult, doc.methodResult);
    // A second draw, matched to the first run's clean accuracy (same test images).
    const second = await run(['baseline', '--method', 'bias-shift', '--match-clean', a, '--out', b, '--seed', '2', ...common]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^worst of fgsm, pgd-10, apgd-ce-10 ε 0.1 \(n = 40\)/m);
    const cmp = path.join(dir, 'cmp');
    const c = await run(['compare', a, b, '--out', cmp, '--json']);
    assert.equal(c.code, 0, c.stderr);
    const comparison = JSON.parse(c.stdout);
    assert.deepEqual(comparison.groups.map((g: { label: string; runs: string[] }) => [g.label, g.runs.length]), [
      ['input model', 1],
      ['bias-shift (clean 0.95)', 1],
      ['bias-shift (matched clean)', 1],
    ]);
    assert.ok(existsSync(path.join(cmp, 'report.html')));
    const html = await fs.readFile(path.join(cmp, 'report.html'), 'utf8');
    assert.match(html, /<svg id="compare"/);
    // Another evaluation: refused.
    const other = path.join(dir, 'shift-other');
    assert.equal((await run(['baseline', '--method', 'bias-shift', '--target-clean', '0.95', '--out', other, ...common, '--eval-n', '200'])).code, 0);
    const refused = await run(['compare', a, other, '--out', path.join(dir, 'cmp2')]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /cannot compare .* evaluated differently \(test images: clean\/FGSM on the first 300/);
    assert.equal(existsSync(path.join(dir, 'cmp2')), false);
  });
});

describe('compare: grouping and statistics', function () {
  let dir: string;

  before(async function () {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-compare-'));
  });

  after(async function () {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  function metrics(clean: number, fgsm: number, pgd: number, worst: number) {
    return {
      clean: { accuracy: clean },
      fgsm: { eps: 0.1, accuracy: fgsm },
      pgd: { eps: 0.1, steps: 40, accuracy: pgd },
      attacks: [
        { name: 'fgsm', label: 'fgsm', eps: 0.1, n: 100, accuracy: fgsm },
        { name: 'pgd', label: 'pgd-40', eps: 0.1, n: 50, accuracy: pgd, steps: 40, stepSize: 0.01 },
      ],
      worstCase: { label: 'worst of fgsm, pgd-40', n: 50, accuracy: worst },
      warnings: [],
    };
  }

  async function write(name: string, seed: number, after: ReturnType<typeof metrics>, evalN = 100): Promise<string> {
    const d = path.join(dir, name);
    await fs.mkdir(d, { recursive: true });
    const doc = {
      format: 'advcorrect-result',
      formatVersion: 1,
      kind: 'baseline',
      method: 'finetune',
      methodSettings: { learningRate: 1e-4, maxEpochs: 20 },
      methodResult: {},
      createdAt: '2026-01-01T00:00:00.000Z',
      settings: { model: '/m/cnnlight.npz', dataset: 'mnist', seed },
      backend: 'cpu',
      evaluation: {
        split: 'test',
        dataset: 'mnist',
        n: evalN,
        pgdN: 50,
        clip: true,
        labels: 'true',
        attacks: after.attacks.map(({ accuracy: _a, ...rest }) => rest),
        worstCase: { label: 'worst of fgsm, pgd-40', n: 50 },
      },
      before: metrics(0.98, 0.2, 0.1, 0.1),
      after,
      distance: seed,
      relativeDistance: 0.1,
      outputs: { model: 'model/model.json', report: 'report.html' },
      methodTimeMs: 1000 * seed,
      wallTimeMs: 5000,
    };
    await fs.writeFile(path.join(d, 'result.json'), JSON.stringify(doc));
    return d;
  }

  it('groups draws of one method, gives mean ± sample sd, and plots the means', async () => {
    const { buildComparison } = await import('../lib/runs/index.js');
    const { renderCompareReport } = await import('../lib/report/index.js');
    const a = await write('a', 1, metrics(0.9, 0.5, 0.4, 0.3));
    const b = await write('b', 3, metrics(0.8, 0.7, 0.6, 0.5));
    const doc = await buildComparison([a, b]);
    assert.deepEqual(doc.groups.map((g) => g.label), ['input model', 'finetune (lr 0.0001)']);
    const g = doc.groups[1]!;
    assert.equal(g.runs.length, 2);
    assert.ok(Math.abs(g.clean.mean - 0.85) < 1e-12);
    assert.ok(Math.abs(g.clean.sd - Math.SQRT2 * 0.05) < 1e-12, 'sample sd of 0.9 and 0.8');
    assert.ok(Math.abs(g.worstCase.mean - 0.4) < 1e-12);
    assert.ok(Math.abs(g.attacks['pgd-40']!.mean - 0.5) < 1e-12);
    assert.deepEqual([g.distance.mean, g.timeS.mean], [2, 2]);
    assert.deepEqual([doc.groups[0]!.clean.mean, doc.groups[0]!.clean.sd, doc.groups[0]!.runs.length], [0.98, 0, 1]);
    const html = renderCompareReport(doc);
    const point = html.match(/<g class="method" data-group="finetune \(lr 0.0001\)" data-clean="([^"]+)" data-clean-sd="[^"]+" data-worst="([^"]+)"/);
    assert.ok(point, 'a point for the group');
    assert.equal(Number(point[1]), g.clean.mean);
    assert.equal(Number(point[2]), g.worstCase.mean);
    assert.ok(!/https?:\/\//.test(html), 'self-contained');
  });

  it('refuses runs evaluated on other test images, and a directory without result.json', async () => {
    const { buildComparison } = await import('../lib/runs/index.js');
    const a = await write('c', 1, metrics(0.9, 0.5, 0.4, 0.3));
    const b = await write('d', 2, metrics(0.9, 0.5, 0.4, 0.3), 200);
    await assert.rejects(buildComparison([a, b]), { name: 'RangeError', message: /evaluated differently \(test images: clean\/FGSM on the first 100 and iterative attacks on 50 vs 200 and 50\)/ });
    await assert.rejects(buildComparison([a, dir]), { name: 'RangeError', message: `compare: ${dir} holds no result.json` });
  });
});
