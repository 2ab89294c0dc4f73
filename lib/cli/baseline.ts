/**
 * `advcorrect baseline`: the obvious alternatives to a correction, on the same data `correct`
 * uses for the same seed and offset, evaluated and written like it (lib/runs/baseline.ts).
 */
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { DATASET_NAMES, type DatasetName } from '../data/datasets.js';
import { ARCH_NAMES, type ArchName } from '../models/architectures.js';
import { BASELINE_METHODS, type BaselineMethod } from '../baselines/index.js';
import type { BaselineDocument } from '../report/index.js';
import { runBaseline, type BaselineRunSettings } from '../runs/index.js';
import { addModelOptions, modelLoadOptions, parsePositiveInteger, parsePositiveNumber, printJson, type ModelFlags } from './common.js';
import { parseDatasetName } from './eval.js';
import { addDrawOptions, addEvaluationOptions, addIoOptions, applyDatasetPreset, drawFromFlags, flagName, evaluationFromFlags, metricsText, parseUnit } from './run-options.js';
import { cliRunIo } from './run-io.js';

function parseMethod(value: string): BaselineMethod {
  if (!(BASELINE_METHODS as readonly string[]).includes(value)) throw new InvalidArgumentError(`unknown method '${value}' (expected one of ${BASELINE_METHODS.join(', ')})`);
  return value as BaselineMethod;
}

/** What `baseline` prints: the before/after table and what the method did. */
export function baselineSummary(doc: BaselineDocument, out: string): string {
  const r = doc.methodResult;
  let what: string;
  if (doc.method === 'bias-shift') {
    what = `bias-shift: ${Number(Number(r.shift).toPrecision(6))} subtracted from ${String(r.layer)}.${String(r.tensor)}; clean ${(100 * Number(r.searchAccuracy)).toFixed(2)}% on the first ${String(r.searchN)} test images (target ${(100 * Number(r.targetClean)).toFixed(2)}%, ${r.matched ? 'matched' : 'NOT matched'}) after ${String(r.searchSteps)} evaluations`;
  } else if (doc.method === 'finetune') {
    what = `finetune: ${String(r.epochs)} epochs; X̃ correct ${String(r.advCorrectBefore)}/${String(r.advCount)} before, ${String(r.advCorrectAfter)}/${String(r.advCount)} after (${r.reached ? 'fixed' : 'NOT fixed within the epoch cap'})`;
  } else {
    what = `pgd-finetune: ${String(r.batches)} batches (${Number(r.epochs).toFixed(2)} epochs over ${String(r.trainImages)} images) in ${(Number(r.trainTimeMs) / 1000).toFixed(1)} s of a ${(Number(r.budgetMs) / 1000).toFixed(1)} s budget; adversarial loss ${Number(r.adversarialLossBefore).toFixed(4)} → ${Number(r.adversarialLossAfter).toFixed(4)} on ${String(r.probeImages)} training images`;
  }
  return [
    ...metricsText(doc),
    '',
    what,
    `‖w − w₀‖ = ${doc.distance.toFixed(4)} (relative ${doc.relativeDistance.toExponential(2)}); method ${(doc.methodTimeMs / 1000).toFixed(1)} s, run ${(doc.wallTimeMs / 1000).toFixed(1)} s, backend ${doc.backend}`,
    `outputs in ${out}: model/model.json${doc.outputs.npz ? `, ${doc.outputs.npz}` : ''}, result.json, report.html`,
  ].join('\n');
}

/** Flags → baseline settings; TypeError for a flag that does not fit the method. */
export function baselineSettingsFromFlags(flags: Record<string, unknown>): BaselineRunSettings {
  const method = flags.method as BaselineMethod | undefined;
  if (method === undefined) throw new TypeError(`--method is required (${BASELINE_METHODS.join(', ')})`);
  if (typeof flags.model !== 'string') throw new TypeError('--model is required');
  if (typeof flags.out !== 'string') throw new TypeError('--out is required');
  if (flags.model.endsWith('.npz') && !flags.arch) throw new TypeError(`--arch is required for an .npz model (one of ${ARCH_NAMES.join(', ')})`);
  const only = (flag: string, key: string, methods: BaselineMethod[]) => {
    if (flags[key] !== undefined && !methods.includes(method)) throw new TypeError(`${flag} applies to ${methods.join(' and ')} only`);
  };
  only('--target-clean', 'targetClean', ['bias-shift']);
  only('--match-clean', 'matchClean', ['bias-shift']);
  only('--budget-s', 'budgetS', ['pgd-finetune']);
  only('--match-time', 'matchTime', ['pgd-finetune']);
  only('--max-epochs', 'maxEpochs', ['finetune']);
  only('--adv-repeat', 'advRepeat', ['finetune']);
  only('--lr', 'lr', ['finetune', 'pgd-finetune']);
  only('--batch-size', 'batchSize', ['finetune', 'pgd-finetune']);
  if (method === 'bias-shift' && (flags.targetClean === undefined) === (flags.matchClean === undefined)) throw new TypeError('bias-shift needs one of --target-clean A or --match-clean DIR');
  if (method === 'pgd-finetune' && (flags.budgetS === undefined) === (flags.matchTime === undefined)) throw new TypeError('pgd-finetune needs one of --budget-s S or --match-time DIR');
  return {
    method,
    ...modelLoadOptions(flags as ModelFlags),
    model: path.resolve(flags.model),
    dataset: flags.dataset as DatasetName,
    out: path.resolve(flags.out),
    draw: drawFromFlags(flags, 1),
    evaluation: evaluationFromFlags(flags),
    evaluateModels: flags.eval as boolean,
    ...(flags.targetClean !== undefined ? { targetClean: flags.targetClean as number } : {}),
    ...(flags.matchClean !== undefined ? { matchClean: path.resolve(flags.matchClean as string) } : {}),
    ...(flags.lr !== undefined ? { learningRate: flags.lr as number } : {}),
    ...(flags.batchSize !== undefined ? { batchSize: flags.batchSize as number } : {}),
    ...(flags.maxEpochs !== undefined ? { maxEpochs: flags.maxEpochs as number } : {}),
    ...(flags.advRepeat !== undefined ? { advRepeat: flags.advRepeat as number } : {}),
    ...(flags.budgetS !== undefined ? { budgetS: flags.budgetS as number } : {}),
    ...(flags.matchTime !== undefined ? { matchTime: path.resolve(flags.matchTime as string) } : {}),
  };
}

export function register(program: Command): void {
  const cmd = program
    .command('baseline')
    .description(
      'Run a baseline on the same data `correct` uses for the same --seed/--adv-offset, evaluate it like `correct` and write ' +
        'model/, model.npz (for an .npz input), result.json and report.html into --out. Methods: bias-shift (subtract one constant ' +
        "from the first layer's biases — bn1's β for ResNet8 — found by bisection to match a clean accuracy), finetune (fine-tune on " +
        'X̃ mixed with the clean subset until X̃ is fixed), pgd-finetune (PGD adversarial fine-tuning on the clean subset + candidate ' +
        'slice within a wall-time budget).',
    )
    .option('--method <m>', `baseline: ${BASELINE_METHODS.join(', ')}`, parseMethod);
  addModelOptions(cmd, false)
    .option('--dataset <name>', `data set (${DATASET_NAMES.join(', ')})`, parseDatasetName, 'mnist')
    .option('--out <dir>', 'output directory')
    .option('--target-clean <a>', 'bias-shift: clean accuracy to match, in [0, 1], on the first --eval-n test images', parseUnit)
    .option('--match-clean <dir>', "bias-shift: match the clean accuracy after of that run's result.json, on the same test images it was measured on")
    .option('--budget-s <s>', 'pgd-finetune: wall-time budget of the training in seconds', parsePositiveNumber)
    .option('--match-time <dir>', "pgd-finetune: budget = that run's time drawing X̃ and correcting (without evaluation)")
    .option('--lr <r>', 'finetune, pgd-finetune: Adam learning rate (default 1e-4)', parsePositiveNumber)
    .option('--batch-size <n>', 'finetune, pgd-finetune: batch size (default 64)', parsePositiveInteger)
    .option('--max-epochs <n>', 'finetune: epoch cap (default 20)', parsePositiveInteger)
    .option('--adv-repeat <n>', 'finetune: copies of X̃ per epoch (default: X̃ about a tenth of the examples)', parsePositiveInteger);
  addDrawOptions(cmd);
  addEvaluationOptions(cmd);
  addIoOptions(cmd).action(async (flags: Record<string, unknown>) => {
    // The same data-set preset as `correct` (X̃ recipe, clean subset, evaluation), so that a baseline
    // runs on exactly the data the correction of the same flags used.
    const preset = applyDatasetPreset(cmd, flags, flags.dataset as string);
    const settings = baselineSettingsFromFlags(flags);
    const io = cliRunIo(flags);
    if (preset.length > 0 && !io.quiet) process.stderr.write(`${flags.dataset as string} defaults (lib/correction/presets.ts) for: ${preset.map(flagName).join(', ')}\n`);
    const doc = await runBaseline(settings, io);
    if (io.json) printJson(doc);
    else process.stdout.write(`${baselineSummary(doc, settings.out)}\n`);
  });
}
