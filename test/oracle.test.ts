/**
 * The PyTorch oracle (scripts/oracle, docs/oracle.md): an independent PyTorch implementation of the
 * four architectures, FGSM, PGD and APGD-CE agrees with advcorrect on real MNIST and CIFAR-10 test
 * images — logits within 1e-4, clean and FGSM accuracy to the image, PGD-40 and APGD-CE within the
 * spread of random starts — for the authors' models, a model written by `advcorrect correct`, and
 * an FC written by exportNpz. Skips with the reason when no Python imports torch or ../shared is absent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../lib/native.js';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset, takeFirst, type DatasetName, type ImageDataset } from '../lib/data/index.js';
import { buildModel, exportNpz, loadModel, readNpz, type ArchName } from '../lib/models/index.js';
import {
  advcorrectHasApgd,
  advcorrectSide,
  compareWithOracle,
  describeProbe,
  findTorchPython,
  formatComparison,
  runTorchOracle,
  spread,
  stochasticTolerance,
  type Comparison,
  type OracleAttack,
  type SideResult,
  type TorchOracleResult,
} from '../scripts/oracle/oracle.js';

const run = promisify(execFile);
const modelsDir = path.resolve(packageRoot, '..', 'shared', 'models');
const cli = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');
const AUTHORS: Record<'cnnlight' | 'cnn' | 'resnet8', string> = {
  cnnlight: path.join(modelsDir, 'mnist_ConvNetLight_norm01.npz'),
  cnn: path.join(modelsDir, 'mnist_ConvNet_norm01.npz'),
  resnet8: path.join(modelsDir, 'cifar10_ResNet8_normDataAug.npz'),
};

const testSets = new Map<DatasetName, ImageDataset>();
async function testImages(name: DatasetName, n: number): Promise<ImageDataset> {
  if (!testSets.has(name)) testSets.set(name, await loadDataset(name, 'test'));
  return takeFirst(testSets.get(name) as ImageDataset, n);
}

interface CheckOptions {
  file: string;
  arch: ArchName;
  dataset: DatasetName;
  /** Images for logits, clean and FGSM. */
  n: number;
  eps: number;
  /** Stochastic attacks, on the first attackN images, seeds 0..seeds-1 on each side. */
  stochastic?: OracleAttack[];
  attackN?: number;
  seeds?: number;
}

/** Both sides on the same images, compared row by row. */
async function check(python: string, o: CheckOptions): Promise<{ comparison: Comparison; ours: SideResult; full: TorchOracleResult; attacked?: TorchOracleResult }> {
  const loaded = await loadModel(o.file, { arch: o.arch });
  try {
    const data = await testImages(o.dataset, o.n);
    const stochastic = o.stochastic ?? [];
    const seeds = Array.from({ length: o.seeds ?? 2 }, (_, i) => i);
    const attackN = o.attackN ?? o.n;
    const ours = await advcorrectSide(loaded, data, { eps: o.eps, attacks: ['fgsm', ...stochastic], seeds, attackN });
    const shape: [number, number, number] = [data.height, data.width, data.channels];
    const full = await runTorchOracle(data.images, data.labels, shape, {
      model: o.file,
      arch: o.arch,
      eps: o.eps,
      attacks: ['fgsm'],
      logits: true,
      perImage: true,
      extra: { fgsm_advcorrect: (ours.fgsm as NonNullable<SideResult['fgsm']>).images },
      python,
    });
    const size = shape[0] * shape[1] * shape[2];
    const attacked = stochastic.length
      ? await runTorchOracle(data.images.subarray(0, attackN * size), data.labels.subarray(0, attackN), shape, { model: o.file, arch: o.arch, eps: o.eps, attacks: stochastic, seeds, python })
      : undefined;
    const comparison = compareWithOracle(ours, full, attacked);
    return { comparison, ours, full, attacked };
  } finally {
    loaded.model.dispose();
  }
}

function assertAgrees(comparison: Comparison, what: string, expectedRows: number): void {
  const table = formatComparison(comparison, { model: what, dataset: '', n: 0, attackN: 0, eps: 0 });
  assert.equal(comparison.rows.length, expectedRows, table);
  for (const row of comparison.rows) assert.ok(row.pass, `${what}: ${row.quantity} fails (${row.advcorrect} vs ${row.pytorch}, must hold ${row.limit})\n${table}`);
}

describe('PyTorch oracle: comparison rules (no Python needed)', () => {
  const base = (): { ours: SideResult; full: TorchOracleResult } => ({
    ours: {
      n: 2,
      logits: Float32Array.from([1, 2, 3, 0.5, 0.25, 0]),
      clean: { correct: 1, perImage: '10' },
      fgsm: { correct: 0, evaluateCorrect: 0, perImage: '00', images: new Float32Array(0), imagesPerImage: '01', timeMs: 0 },
    },
    full: {
      oracle: 'pytorch',
      torch: 'x',
      threads: 1,
      arch: 'fc',
      n: 2,
      eps: 0.1,
      clean: { correct: 1, accuracy: 0.5, perImage: '10' },
      logits: [
        [1, 2, 3],
        [0.5, 0.25, 0],
      ],
      fgsm: { correct: 0, accuracy: 0, perImage: '00', timeMs: 0 },
      extra: { fgsm_advcorrect: { correct: 1, accuracy: 0.5, perImage: '01' } },
      timeMs: 0,
    },
  });

  it('passes identical numbers and fails each kind of disagreement', () => {
    const same = base();
    assert.ok(compareWithOracle(same.ours, same.full).pass);
    const logits = base();
    logits.full.logits![1][2] = 2e-4;
    const logitRow = compareWithOracle(logits.ours, logits.full).rows.find((r) => r.quantity.startsWith('logits'))!;
    assert.equal(logitRow.pass, false);
    assert.equal((logitRow.detail as { maxAbsDifference: number }).maxAbsDifference, 2e-4);
    // Same count, different images: still a failure (per image).
    const swapped = base();
    swapped.full.clean = { correct: 1, accuracy: 0.5, perImage: '01' };
    const cleanRow = compareWithOracle(swapped.ours, swapped.full).rows.find((r) => r.quantity.startsWith('clean'))!;
    assert.equal(cleanRow.pass, false);
    assert.deepEqual((cleanRow.detail as { differingImages: number[] }).differingImages, [0, 1]);
    const fgsm = base();
    fgsm.full.fgsm = { correct: 1, accuracy: 0.5, perImage: '01', timeMs: 0 };
    assert.equal(compareWithOracle(fgsm.ours, fgsm.full).rows.find((r) => r.quantity.startsWith('FGSM'))!.pass, false);
    // A saturated image (1 − p_y < 1e-5) may differ under FGSM; an unsaturated one may not.
    fgsm.full.saturatedPerImage = '01';
    fgsm.full.saturated = 1;
    fgsm.full.fgsm = { correct: 1, accuracy: 0.5, perImage: '01', timeMs: 0 };
    assert.equal(compareWithOracle(fgsm.ours, fgsm.full).rows.find((r) => r.quantity.startsWith('FGSM'))!.pass, true);
    fgsm.full.saturatedPerImage = '10';
    assert.equal(compareWithOracle(fgsm.ours, fgsm.full).rows.find((r) => r.quantity.startsWith('FGSM'))!.pass, false);
  });

  it('judges stochastic attacks by the spread over seeds', () => {
    const a = spread([10, 12, 11]);
    assert.equal(a.mean, 11);
    assert.equal(a.std, 1);
    // 3 standard errors of the difference of the two means, at least one image.
    assert.equal(stochasticTolerance(a, spread([11, 11, 11])), 3 * Math.sqrt(1 / 3));
    assert.equal(stochasticTolerance(spread([5, 5]), spread([5, 5])), 1);
    const ours: SideResult = { ...base().ours, pgd: { n: 2, runs: [{ seed: 0, correct: 10, timeMs: 0, cpuMs: 0 }, { seed: 1, correct: 10, timeMs: 0, cpuMs: 0 }] } };
    const attacked = (counts: number[]): TorchOracleResult => ({
      ...base().full,
      pgd: { steps: 40, stepSize: 0.01, restarts: 1, runs: counts.map((correct, seed) => ({ seed, correct, accuracy: 0, timeMs: 0 })) },
    });
    const row = (counts: number[]) => compareWithOracle(ours, base().full, attacked(counts)).rows.find((r) => r.quantity.startsWith('PGD'))!;
    assert.equal(row([11, 11]).pass, true);
    assert.equal(row([12, 12]).pass, false);
  });

  it('names the interpreters it tried when none has torch', () => {
    const missing = path.join(os.tmpdir(), 'advcorrect-no-such-python');
    const probe = findTorchPython({ ADVCORRECT_PYTHON: missing });
    assert.equal(probe.python, undefined);
    assert.deepEqual(probe.tried, [{ python: missing, result: 'not found' }]);
    assert.match(describeProbe(probe), /no Python with PyTorch .*advcorrect-no-such-python: not found.*python3-torch/);
    if (existsSync('/bin/false')) {
      const failing = findTorchPython({ ADVCORRECT_PYTHON: '/bin/false' });
      assert.equal(failing.python, undefined);
      assert.match(failing.tried[0].result, /cannot import torch/);
    }
  });
});

describe('PyTorch oracle against advcorrect (real images)', function () {
  this.timeout(600_000);
  let python = '';

  before(async function () {
    const probe = findTorchPython();
    if (!probe.python) {
      console.log(`      (skipped: ${describeProbe(probe)})`);
      this.skip();
    }
    python = probe.python as string;
    await initBackend();
  });

  it('an FC written by exportNpz: logits, clean and FGSM on 100 MNIST images', async function () {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-oracle-fc-'));
    try {
      const model = buildModel('fc', { seed: 7 });
      const file = path.join(dir, 'fc.npz');
      await exportNpz(model, 'fc', file);
      model.dispose();
      const { comparison } = await check(python, { file, arch: 'fc', dataset: 'mnist', n: 100, eps: 0.1 });
      assertAgrees(comparison, 'fc', 4);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe("the authors' models", function () {
    before(function () {
      if (!existsSync(AUTHORS.cnnlight) || !existsSync(AUTHORS.cnn) || !existsSync(AUTHORS.resnet8)) {
        console.log(`      (skipped: the authors' models are not in ${modelsDir}; this needs the project's shared/ folder)`);
        this.skip();
      }
    });

    it('CNNLight on MNIST: logits, clean, FGSM on 200 images; PGD-40 and APGD-CE on 100 within the spread of 2 seeds a side', async function () {
      const hasApgd = advcorrectHasApgd();
      if (!hasApgd) console.log('      (APGD-CE part skipped: this build of advcorrect has no apgd in lib/attacks)');
      const stochastic: OracleAttack[] = hasApgd ? ['pgd', 'apgd-ce'] : ['pgd'];
      const { comparison, ours, full } = await check(python, { file: AUTHORS.cnnlight, arch: 'cnnlight', dataset: 'mnist', n: 200, eps: 0.1, stochastic, attackN: 100, seeds: 2 });
      assertAgrees(comparison, 'cnnlight', 4 + stochastic.length);
      // The check has teeth here: FGSM breaks most images, so per-image agreement is not trivial.
      assert.ok(full.clean.correct >= 190 && full.fgsm!.correct < 100, `clean ${full.clean.correct}, FGSM ${full.fgsm!.correct} of 200`);
      assert.ok(ours.pgd!.runs.every((r) => r.correct <= full.fgsm!.correct));
    });

    it('CNN on MNIST: logits, clean and FGSM on 200 images', async function () {
      const { comparison } = await check(python, { file: AUTHORS.cnn, arch: 'cnn', dataset: 'mnist', n: 200, eps: 0.1 });
      assertAgrees(comparison, 'cnn', 4);
    });

    it('ResNet8 on CIFAR-10 (BN statistics, per-channel normalisation): logits, clean and FGSM ε = 0.01 on 100 images', async function () {
      const { comparison, full } = await check(python, { file: AUTHORS.resnet8, arch: 'resnet8', dataset: 'cifar10', n: 100, eps: 0.01 });
      assertAgrees(comparison, 'resnet8', 4);
      assert.deepEqual(full.normalization, { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] });
    });

    it('a CNNLight written by `advcorrect correct` (model.npz): logits, clean, FGSM on 200; PGD-40 on 100 within the spread', async function () {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-oracle-correct-'));
      try {
        // A small real run (about 10 s of correction): the weights move.
        await run(process.execPath, [
          cli, 'correct', '--model', AUTHORS.cnnlight, '--arch', 'cnnlight', '--dataset', 'mnist', '--n-adv', '2', '--tau', '1',
          '--iterations', '5', '--rounds', '1', '--clean-size', '300', '--adv-candidates', '100', '--no-eval', '--quiet', '--out', dir,
        ], { timeout: 300_000 });
        const file = path.join(dir, 'model.npz');
        assert.ok(existsSync(file), 'correct wrote no model.npz');
        const [before, after] = [await readNpz(AUTHORS.cnnlight), await readNpz(file)];
        let moved = 0;
        for (const [key, array] of after) {
          const original = before.get(key)!.data as Float32Array;
          (array.data as Float32Array).forEach((v, i) => (moved = Math.max(moved, Math.abs(v - original[i]))));
        }
        assert.ok(moved > 1e-3, `the corrected weights did not move (max change ${moved})`);
        const { comparison } = await check(python, { file, arch: 'cnnlight', dataset: 'mnist', n: 200, eps: 0.1, stochastic: ['pgd'], attackN: 100, seeds: 2 });
        assertAgrees(comparison, 'corrected cnnlight', 5);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
