/** `advcorrect eval`: clean and adversarial accuracy of a model (FGSM, PGD, APGD-CE, APGD-T, Square; ε sweeps; worst case; masking warnings). */
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkBackendRequest, initBackend, type BackendRequest } from '../backend/index.js';
import { DATASET_NAMES, loadDataset, type DatasetName, type ImageDataset, type Split } from '../data/datasets.js';
import { takeFirst, subset } from '../data/sampling.js';
import { ARCH_NAMES, type ArchName } from '../models/architectures.js';
import { loadModel, type LoadedModel } from '../models/io.js';
import { APGD_DEFAULTS, ATTACK_NAMES, SQUARE_DEFAULTS, attackShortName, evaluate, type AttackName, type AttackSpec } from '../attacks/index.js';
import { parseEpsList, parseNonNegativeInteger, parsePositiveInteger, parsePositiveNumber, parseNonNegativeNumber, printJson, usageErrorsExitTwo } from './common.js';
import { ProgressBar } from './progress.js';

export function parseArch(value: string): ArchName {
  if (!(ARCH_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${ARCH_NAMES.join(', ')}, got '${value}'`);
  return value as ArchName;
}

export function parseDatasetName(value: string): DatasetName {
  if (!(DATASET_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${DATASET_NAMES.join(', ')}, got '${value}'`);
  return value as DatasetName;
}

export function parseSplit(value: string): Split {
  if (value !== 'train' && value !== 'test') throw new InvalidArgumentError(`expected train or test, got '${value}'`);
  return value;
}

export function parseBackend(value: string): BackendRequest {
  try {
    checkBackendRequest(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return value;
}

export function parseLabels(value: string): 'true' | 'pred' {
  if (value !== 'true' && value !== 'pred') throw new InvalidArgumentError(`expected true or pred, got '${value}'`);
  return value;
}

export function parseAttacks(value: string): AttackName[] {
  if (value.trim() === 'none') return [];
  const names = value.split(',').map((part) => part.trim());
  for (const name of names) {
    if (!(ATTACK_NAMES as readonly string[]).includes(name)) throw new InvalidArgumentError(`unknown attack '${name}': expected a list of ${ATTACK_NAMES.join(', ')} (or none)`);
  }
  return [...new Set(names)] as AttackName[];
}

export function parseAttackName(value: string): AttackName {
  if (!(ATTACK_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`unknown attack '${value}': expected one of ${ATTACK_NAMES.join(', ')}`);
  return value as AttackName;
}

/** The attack settings of the shared CLI options, for one attack name and ε. */
export function attackSpecFromFlags(name: AttackName, eps: number, flags: AttackSettingFlags): AttackSpec {
  switch (name) {
    case 'fgsm':
      return { name, eps };
    case 'pgd':
      return { name, eps, steps: flags.pgdSteps, stepSize: flags.pgdStepSize, restarts: flags.restarts, randomStart: flags.randomStart };
    case 'apgd-ce':
      return { name, eps, steps: flags.apgdSteps, restarts: flags.restarts, randomStart: flags.randomStart };
    case 'apgd-t':
      return { name, eps, steps: flags.apgdSteps, restarts: flags.restarts, randomStart: flags.randomStart, targets: flags.targets };
    case 'square':
      return { name, eps, queries: flags.queries };
  }
}

/** Loads the model (tfjs model.json/dir, or .npz with --arch) and the data set slice the commands share. */
export async function loadModelAndData(flags: {
  model: string;
  arch?: ArchName;
  bnStats?: string;
  dataset: DatasetName;
  split: Split;
  n?: number;
  offset?: number;
}): Promise<{ loaded: LoadedModel; data: ImageDataset }> {
  const loaded = await loadModel(flags.model, { ...(flags.arch ? { arch: flags.arch } : {}), ...(flags.bnStats ? { bnStats: flags.bnStats } : {}) });
  const full = await loadDataset(flags.dataset, flags.split);
  const offset = flags.offset ?? 0;
  if (offset >= full.count) throw new RangeError(`--offset ${offset} is beyond the ${full.count} examples of ${flags.dataset} ${flags.split}`);
  const count = Math.min(flags.n ?? full.count, full.count - offset);
  const data = offset === 0 ? takeFirst(full, count) : subset(full, Array.from({ length: count }, (_, i) => offset + i));
  return { loaded, data };
}

/** Flags of {@link addAttackSettingOptions}. */
export interface AttackSettingFlags {
  pgdSteps: number;
  pgdStepSize: number;
  apgdSteps: number;
  restarts: number;
  randomStart: boolean;
  targets: number;
  queries: number;
  clip: boolean;
  labels: 'true' | 'pred';
}

interface EvalFlags extends AttackSettingFlags {
  model: string;
  arch?: ArchName;
  bnStats?: string;
  dataset: DatasetName;
  split: Split;
  attack: AttackName[];
  eps: number[];
  n?: number;
  offset: number;
  seed: number;
  batchSize: number;
  backend?: BackendRequest;
  json?: boolean;
  quiet?: boolean;
}

/** The attack settings, label and clipping options that `eval` and `attack` share. */
export function addAttackSettingOptions(command: Command): Command {
  return command
    .option('--pgd-steps <n>', 'PGD iterations', parseNonNegativeInteger, 40)
    .option('--pgd-step-size <a>', 'PGD step size (pixel units)', parsePositiveNumber, 0.01)
    .option('--apgd-steps <n>', 'APGD iterations per run (apgd-ce, apgd-t; step size is adaptive, starting at 2ε)', parseNonNegativeInteger, APGD_DEFAULTS.steps)
    .option('--restarts <n>', 'runs of pgd, apgd-ce and apgd-t (per target class) from new random starts; the worst case per example is kept', parsePositiveInteger, 1)
    .option('--targets <k>', 'apgd-t: target classes per example, the highest wrong logits at the clean point (capped at classes − 1)', parsePositiveInteger, APGD_DEFAULTS.targets)
    .option('--queries <n>', 'square: query budget per example', parsePositiveInteger, SQUARE_DEFAULTS.queries)
    .option('--no-random-start', 'start pgd and apgd at the clean image instead of a uniform random point of the ε-ball')
    .option('--no-clip', 'do not clip adversarial images to [0, 1] (the paper authors do not clip)')
    .option('--labels <which>', "attack the true labels or the model's clean predictions (true|pred)", parseLabels, 'true');
}

/** Seed, batch size, backend and output options of the tensor commands. */
export function addRunOptions(command: Command): Command {
  return command
    .option('--seed <s>', 'seed of the random starts (pgd, apgd) and of the random search (square)', parseNonNegativeNumber, 0)
    .option('--batch-size <b>', 'examples per batch', parsePositiveInteger, 256)
    .option('--backend <name>', 'tensor backend: auto, tensorflow, native, wasm, cpu (default $ADVCORRECT_BACKEND or auto)', parseBackend)
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print one JSON object on stdout');
}

export function register(program: Command): void {
  const command = program
    .command('eval')
    .description(
      'Clean accuracy and robust accuracy under L∞ attacks on a data set: fgsm, pgd, apgd-ce and apgd-t (Croce & Hein 2020), ' +
        'square (gradient-free, Andriushchenko et al. 2020). The headline is the worst case per example over every attack run ' +
        "(e.g. 'worst of fgsm, pgd-40, apgd-ce, apgd-t'); attacks run on the clean-correct examples only. Warnings flag signs of " +
        'gradient masking (exactly zero input gradients, square breaking examples the gradient attacks left correct). ' +
        'ε is in pixel units ([0, 1] images); for normalised models (CIFAR-10) it is converted per channel.',
    )
    .requiredOption('--model <path>', 'tfjs model.json (or its directory), or a PyTorch .npz with --arch')
    .option('--arch <arch>', `architecture of an .npz model (${ARCH_NAMES.join(', ')})`, parseArch)
    .option('--bn-stats <file>', 'BatchNorm statistics .npz of a ResNet8 .npz')
    .option('--dataset <name>', `data set (${DATASET_NAMES.join(', ')})`, parseDatasetName, 'mnist')
    .option('--split <split>', 'train or test', parseSplit, 'test')
    .addOption(new Option('--attack <list>', `comma-separated attacks: ${ATTACK_NAMES.join(', ')} (or none)`).argParser(parseAttacks).default(['fgsm', 'pgd'], 'fgsm,pgd'))
    .addOption(new Option('--eps <list>', 'L∞ radius in pixel units, in (0, 1]; a comma-separated list makes an ε sweep').argParser(parseEpsList).default([0.1], '0.1'))
    .option('--n <n>', 'evaluate the first n examples (default: all)', parsePositiveInteger)
    .option('--offset <i>', 'start at example i', parseNonNegativeInteger, 0);
  addAttackSettingOptions(command);
  addRunOptions(command);
  usageErrorsExitTwo(command);
  command.action(async (flags: EvalFlags) => {
    const started = Date.now();
    const backend = await initBackend(flags.backend);
    const { loaded, data } = await loadModelAndData(flags);
    const attacks: AttackSpec[] = [];
    for (const eps of flags.eps) for (const name of flags.attack) attacks.push(attackSpecFromFlags(name, eps, flags));
    const controller = new AbortController();
    const onSigint = (): void => controller.abort(new Error('interrupted (SIGINT)'));
    process.once('SIGINT', onSigint);
    let bar: ProgressBar | undefined;
    let stage = '';
    let result;
    try {
      result = await evaluate(loaded, data, {
        attacks,
        labels: flags.labels,
        clip: flags.clip,
        seed: flags.seed,
        batchSize: flags.batchSize,
        signal: controller.signal,
        onProgress: ({ stage: s, done, total }) => {
          if (flags.quiet) return;
          if (s !== stage || !bar) {
            stage = s;
            bar = new ProgressBar(`eval ${s}`, total, { logEveryMs: 5000 });
          }
          bar.update(done);
        },
      });
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    const output = {
      backend,
      dataset: flags.dataset,
      split: flags.split,
      model: flags.model,
      ...(loaded.arch ? { arch: loaded.arch } : {}),
      n: result.n,
      offset: flags.offset,
      clean: result.clean,
      attacks: result.attacks,
      worstCase: result.worstCase,
      warnings: result.warnings,
      ...(result.zeroGradients ? { zeroGradients: result.zeroGradients } : {}),
      timeMs: Date.now() - started,
    };
    if (flags.json) {
      printJson(output);
      return;
    }
    const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
    const lines = [
      `model ${flags.model}${loaded.arch ? ` (${loaded.arch})` : ''}, ${flags.dataset} ${flags.split}, n = ${result.n}, backend ${backend}`,
      `clean accuracy          ${pct(result.clean.accuracy)}`,
    ];
    const width = Math.max(24, ...result.attacks.map((a) => `${attackShortName(a)} ε=${a.eps}`.length + 2));
    for (const a of result.attacks) {
      lines.push(`${`${attackShortName(a)} ε=${a.eps}`.padEnd(width)}${pct(a.accuracy)}  ${describeSettings(a)}${(a.timeMs / 1000).toFixed(1)} s`);
    }
    if (result.attacks.length > 0) lines.push(`${'worst case'.padEnd(width)}${pct(result.worstCase.accuracy)}  (${result.worstCase.label})`);
    if (new Set(result.attacks.map((a) => a.eps)).size > 1) {
      for (const e of result.worstCase.byEps) lines.push(`${`  at ε=${e.eps}`.padEnd(width)}${pct(e.accuracy)}`);
    }
    lines.push(`labels ${flags.labels}, ${flags.clip ? 'clipped to [0, 1]' : 'not clipped'}, attacks on the ${result.clean.correct} clean-correct examples, ${(output.timeMs / 1000).toFixed(1)} s`);
    for (const w of result.warnings) lines.push(`warning (${w.code}): ${w.message}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}

/** The settings of one attack result, for the table: "(40 steps of 0.01, 1 restart, random start) ". */
function describeSettings(a: { name: AttackName; steps?: number; stepSize?: number; restarts?: number; randomStart?: boolean; targets?: number; queries?: number; meanQueries?: number }): string {
  const runs = (r: number | undefined): string => `${r} restart${r === 1 ? '' : 's'}`;
  switch (a.name) {
    case 'pgd':
      return `(${a.steps} steps of ${a.stepSize}, ${runs(a.restarts)}${a.randomStart ? ', random start' : ''})  `;
    case 'apgd-ce':
      return `(${a.steps} iterations, ${runs(a.restarts)}${a.randomStart ? ', random start' : ''})  `;
    case 'apgd-t':
      return `(${a.steps} iterations, ${a.targets} targets, ${runs(a.restarts)} each${a.randomStart ? ', random start' : ''})  `;
    case 'square':
      return `(${a.queries} queries, ${a.meanQueries === undefined ? 'none' : a.meanQueries.toFixed(0)} used on average)  `;
    default:
      return '';
  }
}
