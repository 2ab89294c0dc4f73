import assert from 'node:assert/strict';
import { Command } from 'commander';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { buildModel } from '../lib/models/architectures.js';
import { predictLogits } from '../lib/models/index.js';
import { DEFAULT_CORRECTION_OPTIONS } from '../lib/correction/options.js';
import { CIFAR10_PRESET } from '../lib/correction/presets.js';
import { addCorrectionOptions, applyDatasetPreset, settingsFromFlags } from '../lib/cli/run-options.js';
import { correctlyClassified } from '../lib/runs/split.js';
import { drawSettingsOf, evaluationSettingsOf } from '../lib/runs/index.js';
import { baselineSettingsFromFlags, register as registerBaseline } from '../lib/cli/baseline.js';

function parsed(args: string[]): { cmd: Command; flags: Record<string, unknown> } {
  const cmd = addCorrectionOptions(new Command('correct').exitOverride().configureOutput({ writeErr: () => {} }));
  cmd.parse(args, { from: 'user' });
  return { cmd, flags: cmd.opts() };
}

describe('data-set presets of advcorrect correct', () => {
  it('cifar10 replaces only the flags left at their defaults', () => {
    const { cmd, flags } = parsed(['--delta', '2', '--adv-eps', '0.01', '--rounds', '2']);
    const set = applyDatasetPreset(cmd, flags, 'cifar10');
    // Given on the command line: kept.
    assert.equal(flags.delta, 2);
    assert.equal(flags.advEps, 0.01);
    assert.equal(flags.rounds, 2);
    assert.ok(!set.includes('delta') && !set.includes('advEps') && !set.includes('rounds'));
    // Left at the generic default: the preset's value.
    assert.equal(flags.cleanSize, CIFAR10_PRESET.options.cleanSize);
    assert.equal(flags.iterations, CIFAR10_PRESET.options.maxIterations);
    assert.equal(flags.advSteps, CIFAR10_PRESET.options.attack!.steps);
    assert.equal(flags.advStepSize, CIFAR10_PRESET.options.attack!.stepSize);
    assert.equal(flags.advFrom, 'correct');
    assert.equal(flags.omega, 1);
    assert.equal(flags.advCandidates, CIFAR10_PRESET.advCandidates);
    assert.equal(flags.evalEps, 2 / 255);
    assert.deepEqual(flags.sweep, CIFAR10_PRESET.sweep);
    assert.ok(set.includes('cleanSize') && set.includes('advFrom') && set.includes('evalEps'));

    const settings = settingsFromFlags(flags, { model: 'm.npz', out: 'o', dataset: 'cifar10' });
    assert.equal(settings.options.cleanSize, 500);
    assert.equal(settings.options.delta, 2);
    assert.equal(settings.options.rounds, 2);
    assert.equal(settings.options.attack.eps, 0.01);
    assert.equal(settings.options.attack.steps, 10);
    assert.equal(settings.advFrom, 'correct');
    assert.equal(settings.evalEps, 2 / 255);
  });

  it('baseline takes the same preset, so its X̃, clean subset and evaluation are those of correct', async () => {
    const program = new Command().exitOverride();
    registerBaseline(program);
    const baseline = program.commands.find((c) => c.name() === 'baseline')!;
    baseline.exitOverride().configureOutput({ writeErr: () => {} }).action(() => {});
    await program.parseAsync(['baseline', '--method', 'finetune', '--model', 'm.npz', '--arch', 'resnet8', '--dataset', 'cifar10', '--out', 'o'], { from: 'user' });
    const bFlags = baseline.opts();
    const set = applyDatasetPreset(baseline, bFlags, 'cifar10');
    // Correction-only options are not baseline flags and are left out, the draw and evaluation ones are set.
    assert.ok(!set.includes('omega') && !set.includes('iterations') && !set.includes('rounds'), set.join());
    const b = baselineSettingsFromFlags(bFlags);
    const { cmd, flags } = parsed([]);
    applyDatasetPreset(cmd, flags, 'cifar10');
    const c = settingsFromFlags(flags, { model: 'm.npz', out: 'o', dataset: 'cifar10' });
    assert.deepEqual({ ...b.draw, rounds: 0 }, { ...drawSettingsOf(c), rounds: 0 });
    assert.deepEqual(b.evaluation, evaluationSettingsOf(c, c.options.seed));
  });

  it('mnist (no preset) keeps the generic defaults', () => {
    const { cmd, flags } = parsed([]);
    const before = JSON.stringify(flags);
    assert.deepEqual(applyDatasetPreset(cmd, flags, 'mnist'), []);
    assert.equal(JSON.stringify(flags), before);
    const settings = settingsFromFlags(flags, { model: 'm.npz', out: 'o', dataset: 'mnist' });
    assert.equal(settings.options.cleanSize, DEFAULT_CORRECTION_OPTIONS.cleanSize);
    assert.equal(settings.options.attack.eps, DEFAULT_CORRECTION_OPTIONS.attack.eps);
    assert.equal(settings.advFrom, 'all');
  });

  it('rejects an unknown --adv-from', () => {
    assert.throws(() => parsed(['--adv-from', 'wrong']), /Allowed choices are all, correct/);
  });
});

describe('correctlyClassified', () => {
  before(async () => {
    await initBackend();
  });

  it('keeps exactly the candidates whose clean prediction is the label, in order', async () => {
    const data = takeFirst(await loadDataset('mnist', 'train'), 300);
    const model = buildModel('fc', { seed: 3 });
    // An untrained net is right on about a tenth: a real filter, neither all nor nothing.
    const logits = predictLogits(model, data.images);
    const expected: number[] = [];
    for (let i = 0; i < data.count; i++) {
      let best = 0;
      for (let j = 1; j < 10; j++) if (logits[i * 10 + j]! > logits[i * 10 + best]!) best = j;
      if (best === data.labels[i]) expected.push(i);
    }
    assert.ok(expected.length > 0 && expected.length < data.count);
    const kept = await correctlyClassified(model, data);
    assert.equal(kept.count, expected.length);
    const size = 28 * 28;
    expected.forEach((i, k) => {
      assert.equal(kept.labels[k], data.labels[i]);
      assert.deepEqual(kept.images.subarray(k * size, (k + 1) * size), data.images.subarray(i * size, (i + 1) * size));
    });
    model.dispose();
  });
});
