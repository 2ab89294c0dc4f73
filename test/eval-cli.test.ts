import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { buildModel } from '../lib/models/architectures.js';
import { importNpz, saveModel } from '../lib/models/io.js';
import { predictLogits } from '../lib/models/gradients.js';
import { packageRoot } from '../lib/native.js';
import { loadAdversarialSet } from '../lib/attacks/index.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');
const cnnLight = path.resolve(packageRoot, '..', 'shared', 'models', 'mnist_ConvNetLight_norm01.npz');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function advcorrect(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function accuracyOf(logits: Float32Array, labels: Uint8Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let j = 1; j < 10; j++) if (logits[i * 10 + j] > logits[i * 10 + best]) best = j;
    if (best === labels[i]) correct++;
  }
  return correct / labels.length;
}

describe('advcorrect eval / attack (CLI)', function () {
  let dir: string;
  let modelDir: string;

  before(async function () {
    await initBackend('cpu');
    dir = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-eval-cli-'));
    modelDir = path.join(dir, 'fc');
    await saveModel(buildModel('fc', { seed: 3 }), modelDir, { arch: 'fc' });
  });

  after(async function () {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('--json prints exactly one object; ε = 0 leaves the clean accuracy unchanged', async function () {
    const r = await advcorrect('eval', '--model', path.join(modelDir, 'model.json'), '--dataset', 'mnist', '--n', '60', '--attack', 'fgsm,pgd', '--eps', '0,0.1', '--pgd-steps', '3', '--backend', 'cpu', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.backend, 'cpu');
    assert.equal(out.dataset, 'mnist');
    assert.equal(out.n, 60);
    assert.equal(out.arch, 'fc');
    assert.deepEqual(out.attacks.map((a: { name: string; eps: number }) => `${a.name}@${a.eps}`), ['fgsm@0', 'pgd@0', 'fgsm@0.1', 'pgd@0.1']);
    assert.equal(out.attacks[0].accuracy, out.clean.accuracy);
    assert.equal(out.attacks[1].accuracy, out.clean.accuracy);
    assert.equal(out.attacks[1].steps, 3);
    assert.ok(out.worstCase.accuracy <= Math.min(...out.attacks.map((a: { accuracy: number }) => a.accuracy)));
    assert.equal(typeof out.timeMs, 'number');
    // The clean accuracy is the model's on the first 60 test images.
    const test = takeFirst(await loadDataset('mnist', 'test'), 60);
    const logits = predictLogits(buildModel('fc', { seed: 3 }), test.images);
    assert.equal(out.clean.accuracy, accuracyOf(logits, test.labels));
    assert.match(r.stderr, /eval pgd@0\.1/, 'progress goes to stderr');
  });

  it("reproduces the authors' CNNLight figures on a slice of the test set", async function () {
    if (!existsSync(cnnLight)) this.skip(); // needs ../shared/models (the authors' weights); not shipped with the package
    const r = await advcorrect('eval', '--model', cnnLight, '--arch', 'cnnlight', '--n', '300', '--attack', 'fgsm,pgd', '--pgd-steps', '10', '--pgd-step-size', '0.02', '--json', '--quiet');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', '--quiet prints no progress');
    const out = JSON.parse(r.stdout);
    const loaded = await importNpz(cnnLight, 'cnnlight');
    const test = takeFirst(await loadDataset('mnist', 'test'), 300);
    assert.equal(out.clean.accuracy, accuracyOf(predictLogits(loaded.model, test.images), test.labels));
    assert.ok(out.clean.accuracy > 0.95);
    const [f, p] = out.attacks;
    assert.ok(f.accuracy < 0.45, `FGSM ε 0.1 accuracy ${f.accuracy} (the authors' model is not robust)`);
    assert.ok(p.accuracy <= f.accuracy + 0.01);
    assert.equal(p.randomStart, true);
    assert.equal(f.clip, true);
  });

  it('attack saves a class-balanced set that loads back', async function () {
    const out = path.join(dir, 'set');
    const r = await advcorrect('attack', '--model', modelDir, '--dataset', 'mnist', '--split', 'test', '--n', '2', '--candidates', '80', '--offset', '5', '--attack', 'fgsm', '--eps', '0.1', '--backend', 'cpu', '--out', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.count, 20);
    assert.equal(summary.candidates, 80);
    assert.deepEqual((await readdir(out)).sort(), ['images.idx', 'labels.idx', 'settings.json']);
    const set = await loadAdversarialSet(out);
    assert.equal(set.dataset.count, 20);
    assert.deepEqual(Array.from(set.dataset.labels), Array.from({ length: 20 }, (_, k) => Math.floor(k / 2)));
    assert.ok(set.sourceIndex.every((i) => i >= 5 && i < 85));
    assert.equal(set.settings.split, 'test');
    assert.equal(set.settings.offset, 5);
    const test = await loadDataset('mnist', 'test');
    for (let k = 0; k < 20; k++) assert.equal(test.labels[set.sourceIndex[k]], set.dataset.labels[k]);
  });

  it('explains bad usage with a non-zero exit code', async function () {
    const noArch = await advcorrect('eval', '--model', path.join(dir, 'x.npz'), '--n', '5');
    assert.equal(noArch.code, 2);
    assert.match(noArch.stderr, /arch is required/);
    const badEps = await advcorrect('eval', '--model', modelDir, '--eps', 'abc');
    assert.notEqual(badEps.code, 0);
    assert.match(badEps.stderr, /expected a number, got 'abc'/);
    const badAttack = await advcorrect('eval', '--model', modelDir, '--attack', 'cw');
    assert.notEqual(badAttack.code, 0);
    assert.match(badAttack.stderr, /expected a list of fgsm, pgd/);
    const help = await advcorrect('eval', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--no-clip/);
    assert.match(help.stdout, /--pgd-step-size/);
  });
});
