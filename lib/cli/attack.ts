/** `advcorrect attack`: generate a class-balanced set of adversarial examples and save it (IDX + settings JSON). */
import { Command } from 'commander';
import path from 'node:path';
import { initBackend, type BackendRequest } from '../backend/index.js';
import { DATASET_NAMES, type DatasetName, type Split } from '../data/datasets.js';
import { ARCH_NAMES, type ArchName } from '../models/architectures.js';
import { ATTACK_NAMES, generateAdversarialSet, saveAdversarialSet, type AttackName } from '../attacks/index.js';
import { parseEps, parseNonNegativeInteger, parsePositiveInteger, printJson, usageErrorsExitTwo } from './common.js';
import {
  addAttackSettingOptions,
  addRunOptions,
  attackSpecFromFlags,
  loadModelAndData,
  parseArch,
  parseAttackName,
  parseDatasetName,
  parseSplit,
  type AttackSettingFlags,
} from './eval.js';
import { ProgressBar } from './progress.js';

interface AttackFlags extends AttackSettingFlags {
  model: string;
  arch?: ArchName;
  bnStats?: string;
  dataset: DatasetName;
  split: Split;
  n: number;
  out: string;
  attack: AttackName;
  eps: number;
  offset: number;
  candidates?: number;
  sort: boolean;
  seed: number;
  batchSize: number;
  backend?: BackendRequest;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  const command = program
    .command('attack')
    .description(
      'Attack a slice of a data set and save n adversarial examples per class, most violated (lowest margin ' +
        'f_y − max_j f_j) first within each class: DIR/images.idx (float32 pixels), DIR/labels.idx, DIR/settings.json',
    )
    .requiredOption('--model <path>', 'tfjs model.json (or its directory), or a PyTorch .npz with --arch')
    .requiredOption('--out <dir>', 'output directory')
    .option('--arch <arch>', `architecture of an .npz model (${ARCH_NAMES.join(', ')})`, parseArch)
    .option('--bn-stats <file>', 'BatchNorm statistics .npz of a ResNet8 .npz')
    .option('--dataset <name>', `data set (${DATASET_NAMES.join(', ')})`, parseDatasetName, 'mnist')
    .option('--split <split>', 'train or test', parseSplit, 'train')
    .option('--n <n>', 'adversarial examples kept per class', parsePositiveInteger, 10)
    .option('--attack <name>', `attack: ${ATTACK_NAMES.join(', ')}`, parseAttackName, 'pgd')
    .option('--eps <eps>', 'L∞ radius in pixel units, in (0, 1]', parseEps, 0.1)
    .option('--offset <i>', 'first example of the split attacked', parseNonNegativeInteger, 0)
    .option('--candidates <m>', 'how many examples (from --offset) are attacked to choose from (default 100 per class kept, at most the rest of the split)', parsePositiveInteger)
    .option('--no-sort', 'keep data set order within each class instead of most violated first');
  addAttackSettingOptions(command);
  addRunOptions(command);
  usageErrorsExitTwo(command);
  command.action(async (flags: AttackFlags) => {
    const started = Date.now();
    const backend = await initBackend(flags.backend);
    const candidates = flags.candidates ?? flags.n * 100;
    const { loaded, data } = await loadModelAndData({ ...flags, n: candidates });
    const attack = attackSpecFromFlags(flags.attack, flags.eps, flags);
    const controller = new AbortController();
    const onSigint = (): void => controller.abort(new Error('interrupted (SIGINT)'));
    process.once('SIGINT', onSigint);
    const bar = new ProgressBar(`attack ${flags.attack}@${flags.eps}`, data.count, { quiet: Boolean(flags.quiet) });
    let set;
    try {
      set = await generateAdversarialSet(loaded, data, {
        perClass: flags.n,
        attack,
        labels: flags.labels,
        clip: flags.clip,
        sort: flags.sort,
        seed: flags.seed,
        batchSize: flags.batchSize,
        signal: controller.signal,
        onProgress: (done, total) => bar.update(Math.round((done / total) * data.count)),
        describe: { dataset: flags.dataset, split: flags.split, model: flags.model },
      });
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    // Offsets in the settings refer to the whole split, not to the loaded slice.
    set.settings.offset = flags.offset;
    set.sourceIndex = set.sourceIndex.map((i) => i + flags.offset);
    set.settings.createdAt = new Date().toISOString();
    await saveAdversarialSet(set, flags.out);
    const misclassified = set.margins.reduce((s, m) => s + (m < 0 ? 1 : 0), 0);
    const summary = {
      backend,
      dataset: flags.dataset,
      split: flags.split,
      model: flags.model,
      out: path.resolve(flags.out),
      count: set.dataset.count,
      perClass: flags.n,
      candidates: data.count,
      misclassified,
      margins: { min: Math.min(...set.margins), max: Math.max(...set.margins) },
      settings: set.settings,
      timeMs: Date.now() - started,
    };
    if (flags.json) printJson(summary);
    else {
      process.stdout.write(
        `saved ${set.dataset.count} adversarial examples (${flags.n} per class, chosen from ${data.count}) to ${summary.out}\n` +
          `${misclassified} misclassified; margin f_y − max_j f_j from ${summary.margins.min.toFixed(3)} to ${summary.margins.max.toFixed(3)}\n`,
      );
    }
  });
}
