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
import { runCorrection } from '../runs/index.js';
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
    .option('--out <dir>', 'output directory', 'advcorrect-demo');
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
    const doc = await runCorrection(settings, io);
    if (io.json) printJson(doc);
    else {
      process.stdout.write(`${summaryTable(doc, settings.out)}\n`);
      process.stdout.write(`report: ${path.join(settings.out, 'report.html')} (evaluated on the first ${doc.evaluation.n} test images, PGD on ${doc.evaluation.pgdN})\n`);
    }
  });
}
