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
import { predictLogits } from '../lib/models/index.js';
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

  it('--json prints exactly one object; attacks never beat the clean accuracy', async function () {
    const r = await advcorrect('eval', '--model', path.join(modelDir, 'model.json'), '--dataset', 'mnist', '--n', '60', '--attack', 'fgsm,pgd', '--eps', '0.001,0.1', '--pgd-steps', '3', '--backend', 'cpu', '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.backend, 'cpu');
    assert.equal(out.dataset, 'mnist');
    assert.equal(out.n, 60);
    assert.equal(out.arch, 'fc');
    assert.deepEqual(out.attacks.map((a: { name: string; eps: number }) => `${a.name}@${a.eps}`), ['fgsm@0.001', 'pgd@0.001', 'fgsm@0.1', 'pgd@0.1']);
    for (const a of out.attacks) {
      assert.ok(a.accuracy <= out.clean.accuracy);
      assert.equal(a.attacked, out.clean.correct, 'only the clean-correct examples are attacked');
    }
    assert.equal(out.worstCase.label, 'worst of fgsm, pgd-3 over ε 0.001, 0.1');
    assert.deepEqual(out.worstCase.byEps.map((e: { label: string }) => e.label), ['worst of fgsm, pgd-3', 'worst of fgsm, pgd-3']);
    assert.ok(Array.isArray(out.warnings));
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
    if (!existsSync(cnnLight)) {
      console.log(`skipped: ${cnnLight} is absent (the authors' weights in ../shared/models; not shipped with the package)`);
      this.skip();
    }
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

  it('runs apgd-ce, apgd-t and square with their settings, labels the worst case and prints a table', async function () {
    const args = ['eval', '--model', modelDir, '--n', '40', '--attack', 'apgd-ce,apgd-t,square', '--eps', '0.1', '--apgd-steps', '5', '--targets', '2', '--queries', '30', '--restarts', '2', '--backend', 'cpu'];
    const r = await advcorrect(...args, '--json', '--quiet');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const [ce, t, sq] = out.attacks;
    assert.deepEqual([ce.name, ce.steps, ce.restarts, ce.randomStart], ['apgd-ce', 5, 2, true]);
    assert.deepEqual([t.name, t.steps, t.targets, t.restarts], ['apgd-t', 5, 2, 2]);
    assert.deepEqual([sq.name, sq.queries], ['square', 30]);
    assert.ok(sq.meanQueries >= 1 && sq.meanQueries <= 30);
    assert.equal(out.worstCase.label, 'worst of apgd-ce-5, apgd-t-5, square-30');
    assert.ok(out.worstCase.accuracy <= Math.min(...out.attacks.map((a: { accuracy: number }) => a.accuracy)));
    assert.deepEqual(out.zeroGradients, { checked: out.clean.correct, count: out.zeroGradients.count });
    assert.ok(Array.isArray(out.warnings));
    const table = await advcorrect(...args, '--quiet');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /apgd-t-5 ε=0\.1 +\d+\.\d\d% +\(5 iterations, 2 targets, 2 restarts each, random start\)/);
    assert.match(table.stdout, /worst case +\d+\.\d\d% +\(worst of apgd-ce-5, apgd-t-5, square-30\)/);
  });

  it('attack saves APGD-T adversarial examples', async function () {
    const out = path.join(dir, 'apgd-set');
    const r = await advcorrect('attack', '--model', modelDir, '--split', 'test', '--n', '1', '--candidates', '120', '--attack', 'apgd-t', '--apgd-steps', '3', '--targets', '2', '--backend', 'cpu', '--out', out, '--json', '--quiet');
    assert.equal(r.code, 0, r.stderr);
    const set = await loadAdversarialSet(out);
    assert.equal(set.dataset.count, 10);
    assert.deepEqual(set.settings.attack, { name: 'apgd-t', eps: 0.1, steps: 3, restarts: 1, randomStart: true, targets: 2 });
  });

  it('explains bad usage with a non-zero exit code', async function () {
    const noArch = await advcorrect('eval', '--model', path.join(dir, 'x.npz'), '--n', '5');
    assert.equal(noArch.code, 2);
    assert.match(noArch.stderr, /arch is required/);
    const badEps = await advcorrect('eval', '--model', modelDir, '--eps', 'abc');
    assert.equal(badEps.code, 2);
    assert.match(badEps.stderr, /expected ε values in \(0, 1\] \(pixel units\), got 'abc'/);
    for (const eps of ['0', '0.1,1.5']) {
      const r = await advcorrect('eval', '--model', modelDir, '--eps', eps);
      assert.equal(r.code, 2, `--eps ${eps}`);
      assert.match(r.stderr, /expected ε values in \(0, 1\]/);
    }
    const badAttack = await advcorrect('eval', '--model', modelDir, '--attack', 'fgsm,cw');
    assert.equal(badAttack.code, 2);
    assert.match(badAttack.stderr, /unknown attack 'cw': expected a list of fgsm, pgd, apgd-ce, apgd-t, square \(or none\)/);
    const out = path.join(dir, 'never-written');
    for (const args of [['--eps', '0'], ['--attack', 'cw']]) {
      const r = await advcorrect('attack', '--model', modelDir, '--out', out, ...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(existsSync(out), false, 'nothing written');
    }
    const attackHelp = await advcorrect('attack', '--help');
    assert.match(attackHelp.stdout, /fgsm, pgd, apgd-ce, apgd-t, square/);
    const help = await advcorrect('eval', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--no-clip/);
    assert.match(help.stdout, /--pgd-step-size/);
    for (const option of ['--apgd-steps', '--targets', '--queries', '--restarts']) assert.match(help.stdout, new RegExp(option));
  });
});
