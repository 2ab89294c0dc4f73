/**
 * `advcorrect demo`: the main job in one command. CNNLight on MNIST — the paper authors' weights
 * when ../shared/models is present (or --model PATH), otherwise a base model trained once here and
 * cached — corrected with the correction defaults (2 rounds of 10 PGD examples, ω = 0.5); prints the before/after table and
 * where the report is. Evaluates on the first 2,000 test images (PGD on 500) to stay within minutes.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { initBackend, type BackendRequest } from '../backend/index.js';
import { loadDataset } from '../data/datasets.js';
import { buildModel } from '../models/architectures.js';
import { saveModel } from '../models/io.js';
import { trainModel } from '../models/train.js';
import { packageRoot } from '../native.js';
import { replaceDirAtomic } from '../correction/checkpoint.js';
import { printJson } from './common.js';
import { drawSettingsOf, evaluationSettingsOf, runBaseline, runCorrection } from '../runs/index.js';
import { metricRows, type BaselineDocument, type ResultDocument } from '../report/index.js';
import { addCorrectionOptions, settingsFromFlags } from './run-options.js';
import { cliRunIo } from './run-io.js';
import { summaryTable } from './correct.js';
import { ProgressBar } from './progress.js';

/** The authors' CNNLight weights, when the shared folder sits next to the package. */
export function sharedCnnLight(): string | undefined {
  const file = path.resolve(packageRoot, '..', 'shared', 'models', 'mnist_ConvNetLight_norm01.npz');
  return existsSync(file) ? file : undefined;
}

/** Where the demo caches the model it trains when no weights are given ($ADVCORRECT_CACHE or ~/.cache/advcorrect). */
export function demoCacheDir(): string {
  const root = process.env.ADVCORRECT_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'advcorrect');
  return path.join(root, 'models', 'cnnlight-mnist');
}

/** Trains CNNLight on MNIST with the authors' recipe (3 epochs here instead of 10) and caches it; returns model.json. */
export async function cachedBaseModel(io: { quiet: boolean; backend?: BackendRequest }, epochs = 3): Promise<string> {
  const dir = demoCacheDir();
  const file = path.join(dir, 'model.json');
  if (existsSync(file)) return file;
  await initBackend(io.backend);
  const train = await loadDataset('mnist', 'train');
  const model = buildModel('cnnlight', { seed: 1 });
  if (!io.quiet) process.stderr.write(`no base model given and ../shared/models is absent: training CNNLight on MNIST (${epochs} epochs) once, cached in ${dir}\n`);
  const bar = new ProgressBar('train cnnlight', epochs * train.count, { quiet: io.quiet, logEveryMs: 10000 });
  await trainModel(model, train, {
    epochs,
    seed: 1,
    onProgress: (p) => bar.update(p.examples, `epoch ${p.epoch + 1}/${p.epochs} loss ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}%`),
  });
  bar.finish();
  await replaceDirAtomic(dir, (tmp) => saveModel(model, tmp, { arch: 'cnnlight' }));
  model.dispose();
  return file;
}

export function register(program: Command): void {
  const cmd = program
    .command('demo')
    .description(
      "Correct CNNLight on MNIST with the correction defaults (2 rounds of 10 adversarial examples, ω = 0.5) and print the before/after table: the authors' weights from ../shared/models " +
        'when present (or --model), otherwise a base model trained once and cached. Evaluates on the first 2,000 test images (PGD-40 on 500).',
    )
    .option('--model <path>', 'CNNLight model.json or .npz (default: the shared authors\u2019 weights, else a cached trained model)')
    .option('--out <dir>', 'output directory', 'advcorrect-demo')
    .option('--no-baseline', 'skip the bias-shift baseline matched to the correction\u2019s clean accuracy');
  addCorrectionOptions(cmd);
  // The demo's own evaluation defaults: a test subset, so it finishes in a few minutes on 2 cores.
  cmd.setOptionValueWithSource('evalN', 2000, 'default');
  cmd.setOptionValueWithSource('pgdN', 500, 'default');
  for (const option of cmd.options) {
    if (option.long === '--eval-n') option.default(2000);
    if (option.long === '--pgd-n') option.default(500);
  }
  cmd.action(async (flags: Record<string, unknown>) => {
    const io = cliRunIo(flags);
    const given = typeof flags.model === 'string' ? path.resolve(flags.model) : undefined;
    const model = given ?? sharedCnnLight() ?? (await cachedBaseModel(io));
    const settings = settingsFromFlags(flags, {
      model,
      ...(model.endsWith('.npz') ? { arch: 'cnnlight' as const } : {}),
      out: path.resolve(String(flags.out)),
      dataset: 'mnist',
    });
    if (!io.quiet) process.stderr.write(`demo: ${model}\n`);
    io.beforeCache = new Map();
    const doc = await runCorrection(settings, io);
    let shift: BaselineDocument | undefined;
    if (flags.baseline !== false && settings.evaluateModels) {
      // The obvious alternative, on the same test images: one constant off the conv1 biases, matched to the correction's clean accuracy.
      if (!io.quiet) process.stderr.write('demo: bias-shift baseline matched to the corrected model\u2019s clean accuracy …\n');
      shift = await runBaseline(
        {
          method: 'bias-shift',
          model,
          ...(settings.arch ? { arch: settings.arch } : {}),
          dataset: 'mnist',
          out: path.join(settings.out, 'bias-shift'),
          draw: drawSettingsOf(settings),
          evaluation: evaluationSettingsOf(settings, settings.options.seed),
          evaluateModels: true,
          matchClean: settings.out,
        },
        io,
      );
    }
    if (io.json) printJson(shift ? { ...doc, biasShift: shift } : doc);
    else {
      process.stdout.write(`${summaryTable(doc, settings.out)}\n`);
      if (shift) process.stdout.write(`\n${sideBySide(doc, shift)}\n`);
      process.stdout.write(`report: ${path.join(settings.out, 'report.html')} (evaluated on the first ${doc.evaluation.n} test images, the iterative attacks on ${doc.evaluation.pgdN})\n`);
    }
  });
}

/** The input model, the correction and the matched bias shift, row by row (worst case first). */
export function sideBySide(doc: ResultDocument, shift: BaselineDocument): string {
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a');
  const a = metricRows(doc.before, doc.after, doc.evaluation);
  const b = metricRows(shift.before, shift.after, shift.evaluation);
  const width = Math.max(30, ...a.map((r) => r.name.length + 2));
  const head = `${''.padEnd(width)}${'input'.padStart(9)}${'correct'.padStart(10)}${'bias-shift'.padStart(12)}`;
  const rows = a.map((r, i) => `${r.name.padEnd(width)}${pct(r.before).padStart(9)}${pct(r.after).padStart(10)}${pct(b[i]?.after ?? Number.NaN).padStart(12)}`);
  const d = `${'‖w − w₀‖'.padEnd(width)}${'0'.padStart(9)}${doc.distance.toFixed(3).padStart(10)}${shift.distance.toFixed(3).padStart(12)}`;
  return [
    head,
    ...rows,
    d,
    `bias-shift: ${Number(Number(shift.methodResult.shift).toPrecision(6))} subtracted from ${String(shift.methodResult.layer)}.${String(shift.methodResult.tensor)} to match the clean accuracy (${(shift.methodTimeMs / 1000).toFixed(1)} s; ${path.join(String(shift.settings.out), 'report.html')})`,
  ].join('\n');
}
