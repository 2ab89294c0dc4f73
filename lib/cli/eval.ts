/** `advcorrect eval`: clean and adversarial accuracy of a model (FGSM/PGD, ε sweeps, worst case). */
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkBackendRequest, initBackend, type BackendRequest } from '../backend/index.js';
import { DATASET_NAMES, loadDataset, type DatasetName, type ImageDataset, type Split } from '../data/datasets.js';
import { takeFirst, subset } from '../data/sampling.js';
import { ARCH_NAMES, type ArchName } from '../models/architectures.js';
import { loadModel, type LoadedModel } from '../models/io.js';
import { evaluate, type AttackSpec } from '../attacks/index.js';
import { parseNonNegativeInteger, parseNumberList, parsePositiveInteger, parsePositiveNumber, parseNonNegativeNumber, printJson } from './common.js';
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

function parseAttacks(value: string): Array<'fgsm' | 'pgd'> {
  if (value === 'none') return [];
  const names = value.split(',').map((s) => s.trim());
  for (const name of names) if (name !== 'fgsm' && name !== 'pgd') throw new InvalidArgumentError(`expected a list of fgsm, pgd (or none), got '${name}'`);
  return [...new Set(names)] as Array<'fgsm' | 'pgd'>;
}

function parseEpsList(value: string): number[] {
  const list = parseNumberList(value);
  if (list.some((e) => e < 0)) throw new InvalidArgumentError(`expected ε values ≥ 0, got '${value}'`);
  return list;
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

interface EvalFlags {
  model: string;
  arch?: ArchName;
  bnStats?: string;
  dataset: DatasetName;
  split: Split;
  attack: Array<'fgsm' | 'pgd'>;
  eps: number[];
  pgdSteps: number;
  pgdStepSize: number;
  restarts: number;
  randomStart: boolean;
  clip: boolean;
  labels: 'true' | 'pred';
  n?: number;
  offset: number;
  seed: number;
  batchSize: number;
  backend?: BackendRequest;
  json?: boolean;
  quiet?: boolean;
}

/** The PGD, label and clipping options that `eval` and `attack` share. */
export function addAttackSettingOptions(command: Command): Command {
  return command
    .option('--pgd-steps <n>', 'PGD iterations', parseNonNegativeInteger, 40)
    .option('--pgd-step-size <a>', 'PGD step size (pixel units)', parsePositiveNumber, 0.01)
    .option('--restarts <n>', 'PGD restarts (the worst case per example is kept)', parsePositiveInteger, 1)
    .option('--no-random-start', 'start PGD at the clean image instead of a uniform random point of the ε-ball')
    .option('--no-clip', 'do not clip adversarial images to [0, 1] (the paper authors do not clip)')
    .option('--labels <which>', "attack the true labels or the model's clean predictions (true|pred)", parseLabels, 'true');
}

/** Seed, batch size, backend and output options of the tensor commands. */
export function addRunOptions(command: Command): Command {
  return command
    .option('--seed <s>', 'seed of the PGD random starts', parseNonNegativeNumber, 0)
    .option('--batch-size <b>', 'examples per batch', parsePositiveInteger, 256)
    .option('--backend <name>', 'tensor backend: auto, tensorflow, native, wasm, cpu (default $ADVCORRECT_BACKEND or auto)', parseBackend)
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print one JSON object on stdout');
}

export function register(program: Command): void {
  const command = program
    .command('eval')
    .description(
      'Clean accuracy and accuracy under L∞ attacks (FGSM, PGD) on a data set, with the per-example worst case across attacks. ' +
        'ε is in pixel units ([0, 1] images); for normalised models (CIFAR-10) it is converted per channel.',
    )
    .requiredOption('--model <path>', 'tfjs model.json (or its directory), or a PyTorch .npz with --arch')
    .option('--arch <arch>', `architecture of an .npz model (${ARCH_NAMES.join(', ')})`, parseArch)
    .option('--bn-stats <file>', 'BatchNorm statistics .npz of a ResNet8 .npz')
    .option('--dataset <name>', `data set (${DATASET_NAMES.join(', ')})`, parseDatasetName, 'mnist')
    .option('--split <split>', 'train or test', parseSplit, 'test')
    .addOption(new Option('--attack <list>', 'comma-separated attacks: fgsm, pgd (or none)').argParser(parseAttacks).default(['fgsm', 'pgd'], 'fgsm,pgd'))
    .addOption(new Option('--eps <list>', 'L∞ radius in pixel units; a comma-separated list makes an ε sweep').argParser(parseEpsList).default([0.1], '0.1'))
    .option('--n <n>', 'evaluate the first n examples (default: all)', parsePositiveInteger)
    .option('--offset <i>', 'start at example i', parseNonNegativeInteger, 0);
  addAttackSettingOptions(command);
  addRunOptions(command);
  command.action(async (flags: EvalFlags) => {
    const started = Date.now();
    const backend = await initBackend(flags.backend);
    const { loaded, data } = await loadModelAndData(flags);
    const attacks: AttackSpec[] = [];
    for (const eps of flags.eps) {
      for (const name of flags.attack) {
        attacks.push(
          name === 'fgsm'
            ? { name, eps }
            : { name, eps, steps: flags.pgdSteps, stepSize: flags.pgdStepSize, restarts: flags.restarts, randomStart: flags.randomStart },
        );
      }
    }
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
    for (const a of result.attacks) {
      const settings = a.name === 'pgd' ? ` (${a.steps} steps of ${a.stepSize}, ${a.restarts} restart${a.restarts === 1 ? '' : 's'}${a.randomStart ? ', random start' : ''})` : '';
      lines.push(`${`${a.name} ε=${a.eps}`.padEnd(24)}${pct(a.accuracy)}${settings}  ${(a.timeMs / 1000).toFixed(1)} s`);
    }
    if (result.attacks.length > 1) lines.push(`${'worst case'.padEnd(24)}${pct(result.worstCase.accuracy)}`);
    lines.push(`labels ${flags.labels}, ${flags.clip ? 'clipped to [0, 1]' : 'not clipped'}, ${(output.timeMs / 1000).toFixed(1)} s`);
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}
