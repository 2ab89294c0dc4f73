/**
 * `advcorrect correct`: adversary correction of a model end to end (lib/runs/correction.ts does
 * the work): makes X̃ (PGD on a slice of the training split), runs the cutting-plane loop,
 * evaluates before/after on the test split, and writes the corrected model, result.json and
 * report.html into --out (atomically; Ctrl-C checkpoints, --resume continues).
 */
import path from 'node:path';
import type { Command } from 'commander';
import { DATASET_NAMES, type DatasetName } from '../data/datasets.js';
import { ARCH_NAMES } from '../models/architectures.js';
import type { ResultDocument } from '../report/index.js';
import { readRunSettings, runCorrection, type CorrectionRunSettings } from '../runs/index.js';
import { addModelOptions, modelLoadOptions, printJson, type ModelFlags } from './common.js';
import { parseDatasetName } from './eval.js';
import { addCorrectionOptions, applyDatasetPreset, flagName, metricsText, settingsFromFlags } from './run-options.js';
import { cliRunIo } from './run-io.js';

/** The before/after table printed by `correct` and `demo`: the worst case first. */
export function summaryTable(doc: ResultDocument, out: string): string {
  return [
    ...metricsText(doc),
    '',
    `X̃: ${doc.adversarial.correctBefore}/${doc.adversarial.count} correct before, ${doc.adversarial.correctAfter}/${doc.adversarial.count} after; ` +
      `‖w − w₀‖ = ${doc.distance.toFixed(4)} (relative ${doc.relativeDistance.toExponential(2)}); clean loss ${doc.cleanLossBefore.toFixed(4)} → ${doc.cleanLossAfter.toFixed(4)} (η ${doc.eta.toFixed(4)})`,
    `${doc.iterations.length} iterations (${doc.rounds.map((r) => r.stopReason).join(', ')}), ${(doc.totalQpTimeMs / 1000).toFixed(1)} s in QPs, correction ${(doc.totalTimeMs / 1000).toFixed(1)} s, backend ${doc.backend}`,
    `outputs in ${out}: model/model.json${doc.outputs.npz ? `, ${doc.outputs.npz}` : ''}, result.json, report.html`,
  ].join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('correct')
    .description(
      'Adversary correction: make X̃ by PGD on training images, find the smallest weight change that classifies X̃ correctly ' +
        'with margin δ while the clean loss stays ≤ η (cutting planes + native QPs), evaluate before/after on the test set ' +
        '(headline: the per-image worst case over --attacks), and write model/, result.json and report.html into --out. ' +
        'Ctrl-C checkpoints; --resume DIR continues. With --dataset cifar10 the flags you do not give take the CIFAR-10 preset ' +
        '(X̃ at ε 2/255 from correctly classified images, 500 clean images, 3 rounds of 8 iterations, ω 1, evaluation at ε 2/255; ' +
        'docs/results-cifar10.md) instead of the generic defaults shown below.',
    );
  addModelOptions(cmd, false)
    .option('--dataset <name>', `data set (${DATASET_NAMES.join(', ')})`, parseDatasetName, 'mnist')
    .option('--out <dir>', 'output directory')
    .option('--resume <dir>', 'continue the interrupted run in dir (its run.json and checkpoint; other options are ignored)');
  addCorrectionOptions(cmd).action(async (flags: Record<string, unknown>) => {
    const io = cliRunIo(flags, Boolean(flags.resume));
    let settings: CorrectionRunSettings;
    if (flags.resume) {
      settings = await readRunSettings(path.resolve(flags.resume as string));
    } else {
      if (typeof flags.model !== 'string') throw new TypeError('--model is required (or --resume DIR)');
      if (typeof flags.out !== 'string') throw new TypeError('--out is required');
      if (flags.model.endsWith('.npz') && !flags.arch) throw new TypeError(`--arch is required for an .npz model (one of ${ARCH_NAMES.join(', ')})`);
      const preset = applyDatasetPreset(cmd, flags, flags.dataset as string);
      if (preset.length > 0 && !io.quiet) process.stderr.write(`${flags.dataset as string} defaults (lib/correction/presets.ts) for: ${preset.map(flagName).join(', ')}\n`);
      settings = settingsFromFlags(flags, {
        ...modelLoadOptions(flags as ModelFlags),
        model: path.resolve(flags.model),
        out: path.resolve(flags.out),
        dataset: flags.dataset as DatasetName,
      });
    }
    const doc = await runCorrection(settings, io);
    if (io.json) printJson(doc);
    else process.stdout.write(`${summaryTable(doc, settings.out)}\n`);
  });
}
