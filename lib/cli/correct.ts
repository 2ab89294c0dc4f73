/**
 * `advcorrect correct`: adversary correction of a model end to end — makes X̃ (PGD on a slice of the
 * training split), runs the cutting-plane loop, evaluates before/after on the test split, and writes
 * the corrected model, result.json and report.html into --out (atomically; Ctrl-C checkpoints,
 * --resume continues).
 */
import { promises as fs, existsSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../errors.js';
import { activeBackend, initBackend, type BackendRequest } from '../backend/index.js';
import { DATASET_NAMES, loadDataset, normalize, type DatasetName, type ImageDataset } from '../data/datasets.js';
import { shuffleIndices, subset, takeFirst } from '../data/sampling.js';
import { ARCH_NAMES, type ArchName } from '../models/architectures.js';
import { predictLogitsAsync } from '../models/gradients.js';
import { exportNpz, loadModel, saveModel, type LoadedModel } from '../models/io.js';
import { evaluate, type AttackSpec } from '../attacks/index.js';
import { generateAdversarialSet } from '../attacks/adversarial-set.js';
import { correct, type CorrectionState, type CutQpSnapshot, type LabelledImages } from '../correction/correct.js';
import { loadCheckpoint, replaceDirAtomic, saveCheckpoint } from '../correction/checkpoint.js';
import { writeFileAtomic } from '../data/files.js';
import { DEFAULT_CORRECTION_OPTIONS, resolveCorrectionOptions, type CorrectionOptions, type CorrectionOptionsInput } from '../correction/options.js';
import type { CorrectionProgress } from '../correction/types.js';
import { ADV_SOURCES, DATASET_PRESETS, type AdvSource } from '../correction/presets.js';
import { quantiseImages, writeReport, writeResult, type ResultDocument, type RobustnessSweep, type TestMetrics } from '../report/index.js';
import { parseFiniteNumber, parseNonNegativeInteger, parseNonNegativeNumber, parseNumberList, parsePositiveInteger, parsePositiveNumber, printJson } from './common.js';
import { parseArch, parseBackend, parseDatasetName, parseLabels } from './eval.js';
import { ProgressBar, formatSeconds } from './progress.js';
import { registerDemo } from './demo.js';

/** Everything a run depends on (saved as run.json so --resume repeats it exactly). */
export interface CorrectionRunSettings {
  model: string;
  arch?: ArchName;
  dataset: DatasetName;
  out: string;
  /** Correction options (options.ts). */
  options: CorrectionOptions;
  /** Training images attacked per round to find X̃ (a slice of the seeded training permutation after the clean subset). */
  advCandidates: number;
  /** Extra offset into the permutation for X̃ (to draw other X̃ with the same seed). */
  advOffset: number;
  advLabels: 'true' | 'pred';
  /**
   * Which candidate images may give X̃: 'all', or only those the current model classifies correctly
   * clean ('correct': X̃ holds real adversarial flips, not images the model gets wrong anyway).
   * Missing in run.json files written before the option existed: 'all'.
   */
  advFrom?: AdvSource;
  clip: boolean;
  /** Test evaluation: first evalN test images for clean/FGSM, first pgdN for PGD (0 = skip PGD). */
  evalN: number;
  pgdN: number;
  evalEps: number;
  pgdSteps: number;
  pgdStepSize: number;
  /** FGSM ε sweep for the report ([] = none). */
  sweep: number[];
  evaluateModels: boolean;
  dumpQp?: string;
}

export interface RunIo {
  json: boolean;
  quiet: boolean;
  backend?: BackendRequest;
  resume: boolean;
  /** Reuse "before" metrics across runs with the same model and evaluation settings (bench/results.ts). */
  beforeCache?: Map<string, { metrics: TestMetrics; sweep: Map<number, number> }>;
}

const RUN_FILE = 'run.json';

function log(io: RunIo, text: string): void {
  if (!io.quiet) process.stderr.write(`${text}\n`);
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a';
}

async function evaluateTest(model: LoadedModel, test: ImageDataset, s: CorrectionRunSettings, io: RunIo, what: string, signal: AbortSignal): Promise<{ metrics: TestMetrics; sweep: Map<number, number> }> {
  const evalSet = takeFirst(test, s.evalN);
  const epsList = [...new Set([s.evalEps, ...s.sweep])].sort((a, b) => a - b);
  const attacks: AttackSpec[] = epsList.map((eps) => ({ name: 'fgsm', eps }));
  let bar: ProgressBar | undefined;
  let stage = '';
  const onProgress = ({ stage: st, done, total }: { stage: string; done: number; total: number }) => {
    if (io.quiet) return;
    if (st !== stage || !bar) {
      stage = st;
      bar = new ProgressBar(`eval ${what} ${st}`, total, { logEveryMs: 10000 });
    }
    bar.update(done);
  };
  const main = await evaluate(model, evalSet, { attacks, labels: s.advLabels === 'pred' ? 'pred' : 'true', clip: s.clip, seed: s.options.seed, signal, onProgress });
  const sweep = new Map<number, number>();
  for (const a of main.attacks) sweep.set(a.eps, a.accuracy);
  let pgdAccuracy = Number.NaN;
  if (s.pgdN > 0) {
    const pgdSet = takeFirst(test, s.pgdN);
    const res = await evaluate(model, pgdSet, {
      attacks: [{ name: 'pgd', eps: s.evalEps, steps: s.pgdSteps, stepSize: s.pgdStepSize, randomStart: true, restarts: 1 }],
      labels: 'true',
      clip: s.clip,
      seed: s.options.seed,
      signal,
      onProgress,
    });
    pgdAccuracy = res.attacks[0]!.accuracy;
  }
  return {
    metrics: {
      clean: { accuracy: main.clean.accuracy },
      fgsm: { eps: s.evalEps, accuracy: sweep.get(s.evalEps)! },
      pgd: { eps: s.evalEps, steps: s.pgdSteps, stepSize: s.pgdStepSize, n: Math.min(s.pgdN, test.count), accuracy: pgdAccuracy },
    },
    sweep,
  };
}

/** The seeded split of the training set: clean subset first, then the X̃ candidate slices (one per round). */
function trainingSplit(train: ImageDataset, s: CorrectionRunSettings): { clean: ImageDataset; candidates: (round: number) => ImageDataset } {
  const need = s.options.cleanSize + s.advOffset + s.advCandidates * s.options.rounds;
  if (need > train.count) {
    throw new RangeError(`--clean-size + --adv-offset + --adv-candidates × --rounds = ${need} exceeds the ${train.count} training images`);
  }
  const perm = shuffleIndices(train.count, s.options.seed);
  const clean = subset(train, perm.subarray(0, s.options.cleanSize), `${train.name}-clean`);
  const candidates = (round: number) => {
    const start = s.options.cleanSize + s.advOffset + (round - 1) * s.advCandidates;
    return subset(train, perm.subarray(start, start + s.advCandidates), `${train.name}-adv-r${round}`);
  };
  return { clean, candidates };
}

/** The candidates the model (in its input space) classifies correctly: the only sources of X̃ under `--adv-from correct`. */
export async function correctlyClassified(model: LayersModel | LoadedModel, candidates: ImageDataset, signal?: AbortSignal): Promise<ImageDataset> {
  const loaded = 'inputShape' in model ? model : undefined;
  const layers = loaded ? loaded.model : (model as LayersModel);
  const input = loaded?.normalization ? normalize(candidates.images, loaded.normalization, candidates.channels) : candidates.images;
  const logits = await predictLogitsAsync(layers, input, { ...(signal ? { signal } : {}) });
  const C = candidates.numClasses;
  const keep: number[] = [];
  for (let i = 0; i < candidates.count; i++) {
    let best = 0;
    for (let j = 1; j < C; j++) if (logits[i * C + j]! > logits[i * C + best]!) best = j;
    if (best === candidates.labels[i]) keep.push(i);
  }
  return subset(candidates, keep, `${candidates.name}-correct`);
}

/** X̃ of one round: class-balanced, most violated first (PGD by default), exactly nAdversarial examples. */
async function makeAdversarial(model: LayersModel | LoadedModel, slice: ImageDataset, s: CorrectionRunSettings, round: number, signal?: AbortSignal): Promise<ImageDataset> {
  const o = s.options;
  const candidates = (s.advFrom ?? 'all') === 'correct' ? await correctlyClassified(model, slice, signal) : slice;
  const perClass = Math.ceil(o.nAdversarial / candidates.numClasses);
  const set = await generateAdversarialSet(model, candidates, {
    perClass,
    attack: { name: 'pgd', eps: o.attack.eps, steps: o.attack.steps, stepSize: o.attack.stepSize, randomStart: o.attack.randomStart, restarts: o.attack.restarts },
    labels: s.advLabels,
    clip: s.clip,
    sort: true,
    seed: o.seed + 1000 * round,
    signal,
  } as Parameters<typeof generateAdversarialSet>[2]);
  if (set.dataset.count === o.nAdversarial) return set.dataset;
  // Not a multiple of the class count: keep the most violated overall.
  const order = Array.from(set.margins.keys()).sort((a, b) => set.margins[a]! - set.margins[b]!).slice(0, o.nAdversarial);
  return subset(set.dataset, order.sort((a, b) => a - b));
}

function inputSpace(images: Float32Array, loaded: LoadedModel, channels: number): Float32Array {
  return loaded.normalization ? normalize(images, loaded.normalization, channels) : images;
}

/** Runs a correction as the CLI does (also used by `advcorrect demo` and bench/results.ts). */
export async function runCorrection(settings: CorrectionRunSettings, io: RunIo): Promise<ResultDocument> {
  const started = Date.now();
  const s = settings;
  await fs.mkdir(s.out, { recursive: true });
  if (!io.resume) await writeFileAtomic(path.join(s.out, RUN_FILE), `${JSON.stringify(s, null, 2)}\n`);
  const backend = await initBackend(io.backend);
  const controller = new AbortController();
  const onSigint = (): void => controller.abort(new Error('interrupted (SIGINT)'));
  process.once('SIGINT', onSigint);
  const signal = controller.signal;
  try {
    const loaded = await loadModel(s.model, s.arch ? { arch: s.arch } : {});
    const arch = s.arch ?? loaded.arch;
    const [train, test] = await Promise.all([loadDataset(s.dataset, 'train'), loadDataset(s.dataset, 'test')]);
    if (loaded.inputShape.join('x') !== [train.height, train.width, train.channels].join('x')) {
      throw new AdvcorrectError('ERR_DATA', `the model takes inputs of shape [${loaded.inputShape.join(', ')}] but ${s.dataset} images are [${train.height}, ${train.width}, ${train.channels}]`);
    }
    if (loaded.numClasses !== train.numClasses) throw new AdvcorrectError('ERR_DATA', `the model has ${loaded.numClasses} classes, ${s.dataset} has ${train.numClasses}`);
    const split = trainingSplit(train, s);
    const channels = train.channels;

    let before: { metrics: TestMetrics; sweep: Map<number, number> } | undefined;
    if (s.evaluateModels) {
      log(io, `evaluating the input model on ${s.evalN} test images (PGD on ${s.pgdN}) …`);
      const key = JSON.stringify([s.model, s.evalN, s.pgdN, s.evalEps, s.pgdSteps, s.pgdStepSize, s.sweep, s.clip, s.advLabels, s.options.seed]);
      before = io.beforeCache?.get(key) ?? (await evaluateTest(loaded, test, s, io, 'before', signal));
      io.beforeCache?.set(key, before);
      log(io, `before: clean ${pct(before.metrics.clean.accuracy)}, FGSM ε ${s.evalEps} ${pct(before.metrics.fgsm.accuracy)}, PGD ${pct(before.metrics.pgd.accuracy)}`);
    }

    let resume: CorrectionState | undefined;
    let adversarial: ImageDataset;
    if (io.resume) {
      resume = (await loadCheckpoint(s.out)) as CorrectionState;
      const first = resume.advRounds.findIndex((r) => r !== 1);
      const count = first < 0 ? resume.advLabels.length : first;
      adversarial = { ...train, name: 'adversarial', images: resume.advImages.slice(0, count * resume.inputSize), labels: resume.advLabels.slice(0, count), count };
      log(io, `resuming from round ${resume.round}, iteration ${resume.iteration}${resume.done ? ' (finished)' : ''}`);
    } else {
      log(io, `making ${s.options.nAdversarial} adversarial examples (PGD ε ${s.options.attack.eps}, ${s.options.attack.steps} × ${s.options.attack.stepSize}) from ${s.advCandidates} training images …`);
      adversarial = await makeAdversarial(loaded, split.candidates(1), s, 1, signal);
    }

    const bar = new ProgressBar('correct', s.options.maxIterations * s.options.rounds, { quiet: io.quiet, logEveryMs: 0 });
    const onProgress = (e: CorrectionProgress) => {
      if (e.kind === 'start') log(io, `correcting ${e.parameters} parameters: |X̃| = ${e.adversarial}, V = ${e.violation.toFixed(3)}, clean loss ${e.cleanLoss.toFixed(4)}, η = ${e.eta.toFixed(4)}`);
      else if (e.kind === 'iteration') {
        bar.update(
          (e.round - 1) * e.maxIterations + e.iteration,
          `r${e.round} cuts ${e.cutsTotal} QP ${e.qpStatus === 'solved' ? '' : `${e.qpStatus} `}${e.qpTimeMs.toFixed(0)}ms α ${e.alpha} V ${e.violation.toFixed(3)} wrong ${e.misclassified} L ${e.cleanLoss.toFixed(4)}${e.feasible ? '' : '>η'} ‖w−w₀‖ ${e.distance.toFixed(4)}`,
        );
      } else if (e.kind === 'round') log(io, `round ${e.round}: |X̃| = ${e.adversarial}`);
      else if (e.kind === 'infeasible') log(io, `round ${e.round} iteration ${e.iteration}: infeasible QP, dropped ${e.dropped} cuts`);
    };
    const clean: LabelledImages = { images: inputSpace(split.clean.images, loaded, channels), labels: split.clean.labels };
    const adv: LabelledImages = { images: inputSpace(adversarial.images, loaded, channels), labels: adversarial.labels };
    let output;
    try {
      output = await correct(loaded.model, adv, clean, s.options as CorrectionOptionsInput, {
        signal,
        onProgress,
        ...(resume ? { resume } : {}),
        onCheckpoint: async (state) => {
          await saveCheckpoint(s.out, state);
        },
        regenerate: async (model, round, sig) => {
          log(io, `round ${round}: making ${s.options.nAdversarial} new adversarial examples against the corrected model …`);
          const ds = await makeAdversarial({ ...loaded, model }, split.candidates(round), s, round, sig);
          return { images: inputSpace(ds.images, loaded, channels), labels: ds.labels };
        },
        ...(s.dumpQp
          ? {
              onQp: async (qp: CutQpSnapshot) => {
                const { dumpCutQpData } = await import('../qp/solve.js');
                await dumpCutQpData(qp, s.dumpQp!, `r${qp.round}-it${String(qp.iteration).padStart(3, '0')}${qp.attempt > 0 ? `-a${qp.attempt}` : ''}`);
              },
            }
          : {}),
      });
    } catch (error) {
      if (error instanceof AdvcorrectError && error.code === 'ERR_ABORTED') {
        throw new AdvcorrectError(
          'ERR_ABORTED',
          `interrupted; the last finished iteration is checkpointed in ${path.join(s.out, 'checkpoint')} — continue with: advcorrect correct --resume ${s.out}`,
          { cause: error },
        );
      }
      throw error;
    }
    const { model: corrected, result } = output;
    bar.finish(`${result.iterations.length} iterations, ${formatSeconds(result.totalTimeMs / 1000)}`);

    let after: { metrics: TestMetrics; sweep: Map<number, number> } | undefined;
    if (s.evaluateModels) {
      log(io, 'evaluating the corrected model …');
      after = await evaluateTest({ ...loaded, model: corrected }, test, s, io, 'after', signal);
    }

    // Outputs, each atomically: model directory, .npz, result.json, report.html.
    await replaceDirAtomic(path.join(s.out, 'model'), (tmp) => saveModel(corrected, tmp, { ...(arch ? { arch } : {}), ...(loaded.normalization ? { normalization: loaded.normalization } : {}) }));
    let npz: string | undefined;
    if (loaded.source === 'npz' && arch) {
      npz = 'model.npz';
      const tmp = path.join(s.out, `.model.npz.${process.pid}.tmp`);
      await exportNpz(corrected, arch, tmp);
      await fs.rename(tmp, path.join(s.out, npz));
    }
    const nan: TestMetrics = { clean: { accuracy: Number.NaN }, fgsm: { eps: s.evalEps, accuracy: Number.NaN }, pgd: { eps: s.evalEps, steps: s.pgdSteps, accuracy: Number.NaN } };
    const sweep: RobustnessSweep | undefined =
      before && after && s.sweep.length > 0 ? { attack: 'fgsm', points: s.sweep.map((eps) => ({ eps, before: before!.sweep.get(eps)!, after: after!.sweep.get(eps)! })) } : undefined;
    const size = train.height * train.width * train.channels;
    const shown = quantiseImages(
      loaded.normalization ? denormalise(result, output.state.advImages, loaded, channels) : output.state.advImages,
      result.adversarial.count,
      size,
    );
    const doc: ResultDocument = {
      format: 'advcorrect-result',
      formatVersion: 1,
      createdAt: new Date().toISOString(),
      settings: { ...s, options: undefined, command: 'advcorrect correct', ...(arch ? { arch } : {}) },
      backend: activeBackend() ?? backend,
      evaluation: { split: 'test', n: Math.min(s.evalN, test.count), pgdN: Math.min(s.pgdN, test.count), clip: s.clip, labels: 'true' },
      ...result,
      before: before?.metrics ?? nan,
      after: after?.metrics ?? nan,
      ...(sweep ? { sweep } : {}),
      examples: {
        height: train.height,
        width: train.width,
        channels: train.channels,
        items: shown.map((pixels, i) => ({
          label: result.adversarial.labels[i]!,
          before: result.adversarial.predictionsBefore[i]!,
          after: result.adversarial.predictionsAfter[i]!,
          round: result.adversarial.rounds[i]!,
          pixels,
        })),
      },
      outputs: { model: 'model/model.json', ...(npz ? { npz } : {}), report: 'report.html' },
      totalTimeMs: result.totalTimeMs,
    };
    (doc as unknown as { wallTimeMs: number }).wallTimeMs = Date.now() - started;
    await writeResult(s.out, doc);
    await writeReport(s.out, doc);
    corrected.dispose();
    return doc;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function denormalise(_result: unknown, images: Float32Array, loaded: LoadedModel, channels: number): Float32Array {
  const { mean, std } = loaded.normalization!;
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = images[i]! * std[i % channels]! + mean[i % channels]!;
  return out;
}

/** The before/after table printed by `correct` and `demo`. */
export function summaryTable(doc: ResultDocument, out: string): string {
  const row = (name: string, b: number, a: number) => {
    const d = (a - b) * 100;
    const change = Number.isFinite(d) ? `${d >= 0 ? '+' : ''}${d.toFixed(2)} pp` : 'n/a';
    return `${name.padEnd(30)}${pct(b).padStart(9)}${pct(a).padStart(9)}${change.padStart(12)}`;
  };
  const e = doc.evaluation;
  return [
    `${''.padEnd(30)}${'before'.padStart(9)}${'after'.padStart(9)}${'change'.padStart(12)}`,
    row(`clean (test, n=${e.n})`, doc.before.clean.accuracy, doc.after.clean.accuracy),
    row(`FGSM ε=${doc.before.fgsm.eps} (n=${e.n})`, doc.before.fgsm.accuracy, doc.after.fgsm.accuracy),
    row(`PGD-${doc.before.pgd.steps} ε=${doc.before.pgd.eps} (n=${e.pgdN})`, doc.before.pgd.accuracy, doc.after.pgd.accuracy),
    '',
    `X̃: ${doc.adversarial.correctBefore}/${doc.adversarial.count} correct before, ${doc.adversarial.correctAfter}/${doc.adversarial.count} after; ` +
      `‖w − w₀‖ = ${doc.distance.toFixed(4)} (relative ${doc.relativeDistance.toExponential(2)}); clean loss ${doc.cleanLossBefore.toFixed(4)} → ${doc.cleanLossAfter.toFixed(4)} (η ${doc.eta.toFixed(4)})`,
    `${doc.iterations.length} iterations (${doc.rounds.map((r) => r.stopReason).join(', ')}), ${(doc.totalQpTimeMs / 1000).toFixed(1)} s in QPs, correction ${(doc.totalTimeMs / 1000).toFixed(1)} s, backend ${doc.backend}`,
    `outputs in ${out}: model/model.json${doc.outputs.npz ? `, ${doc.outputs.npz}` : ''}, result.json, report.html`,
  ].join('\n');
}

function parseUnit(value: string): number {
  const v = parseFiniteNumber(value);
  if (v < 0 || v > 1) throw new InvalidArgumentError(`expected a number in [0, 1], got '${value}'`);
  return v;
}

function parseAlphas(value: string): number[] {
  const list = parseNumberList(value);
  if (list.length === 0 || list.some((a) => !(a > 0 && a <= 1))) throw new InvalidArgumentError(`expected step sizes in (0, 1], got '${value}'`);
  return list;
}

function parseEpsList(value: string): number[] {
  if (value.trim() === '' || value === 'none') return [];
  const list = parseNumberList(value);
  if (list.some((e) => !(e > 0))) throw new InvalidArgumentError(`expected ε values > 0, got '${value}'`);
  return list;
}

function parseLayers(value: string): 'all' | string[] {
  if (value === 'all') return 'all';
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError(`expected 'all' or a comma-separated list of layer names, got '${value}'`);
  return list;
}

function oneOf<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!allowed.includes(value as T)) throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}, got '${value}'`);
    return value as T;
  };
}

/** Adds the correction options (shared by `correct` and `demo`). */
export function addCorrectionOptions(cmd: Command): Command {
  const d = DEFAULT_CORRECTION_OPTIONS;
  return cmd
    .option('--n-adv <n>', '|X̃|: adversarial examples per round (class-balanced, most violated first)', parsePositiveInteger, d.nAdversarial)
    .option('--omega <w>', 'ω: weight of the violation in the selection score ω·Ṽ + (1 − ω)·L̃', parseUnit, d.omega)
    .option('--delta <d>', 'δ: margin of the constraints f_j − f_y + δ ≤ 0', parseNonNegativeNumber, d.delta)
    .option('--tau <t>', 'τ: loss level η = (1 + τ)·L_clean(w₀)', parseNonNegativeNumber, d.tau)
    .option('--eta <e>', 'absolute loss level η (overrides --tau)', parsePositiveNumber)
    .option('--iterations <m>', 'M: inner iterations per round', parsePositiveInteger, d.maxIterations)
    .addOption(new Option('--alphas <list>', 'line-search step sizes α in (0, 1]').argParser(parseAlphas).default(d.alphas, d.alphas.join(',')))
    .option('--rounds <r>', 'R: outer rounds (each regenerates X̃ against the corrected model)', parsePositiveInteger, d.rounds)
    .addOption(new Option('--cut-classes <which>', 'cut all near-active wrong classes or only the worst per example').choices(['all', 'worst']).default(d.cutClasses))
    .option('--cut-slack <s>', 'cut targets aim inside: margin cuts at δ(1 + s), the loss cut at η − s(η − L₀)', parseNonNegativeNumber, d.cutSlack)
    .option('--active-tol <t>', 'a margin cut is added when g_ij(w_k) ≥ −t', parseNonNegativeNumber, d.activeTolerance)
    .addOption(new Option('--violation <v>', 'V: sum of positive margin violations, or fraction of X̃ misclassified').choices(['sum', 'fraction']).default(d.violation))
    .addOption(new Option('--layers <list>', "layers that move: 'all' or comma-separated names").argParser(parseLayers).default('all'))
    .addOption(new Option('--solver <s>', 'QP solver of the cut pool').choices(['dual', 'admm']).default(d.solver))
    .option('--qp-eps <e>', 'QP tolerance', parsePositiveNumber, d.qpEps)
    .option('--qp-time-limit <s>', 'per-QP time limit in seconds (0 = none)', parseNonNegativeNumber, 0)
    .option('--max-cuts <n>', 'cut-pool size limit (longest-inactive cuts go first)', parsePositiveInteger, d.maxCuts)
    .option('--drop-inactive <k>', 'drop cuts inactive for k consecutive solves (0 = never)', parseNonNegativeInteger, d.dropInactiveAfter)
    .option('--patience <k>', 'stop a round after k iterations without a new Pareto candidate', parsePositiveInteger, d.patience)
    .option('--seed <s>', 'seed of everything random (data split, attacks)', parseNonNegativeInteger, d.seed)
    .option('--clean-size <n>', 'training images in the clean-loss subset', parsePositiveInteger, d.cleanSize)
    .option('--adv-candidates <n>', 'training images attacked per round to pick X̃ from', parsePositiveInteger, 1000)
    .option('--adv-offset <n>', 'skip n images of the seeded permutation before the X̃ candidates (another draw of X̃)', parseNonNegativeInteger, 0)
    .option('--adv-eps <e>', 'ε of the PGD attack that makes X̃', parsePositiveNumber, d.attack.eps)
    .option('--adv-steps <n>', 'PGD steps for X̃', parsePositiveInteger, d.attack.steps)
    .option('--adv-step-size <a>', 'PGD step size for X̃', parsePositiveNumber, d.attack.stepSize)
    .option('--adv-restarts <n>', 'PGD restarts for X̃', parsePositiveInteger, d.attack.restarts)
    .option('--no-adv-random-start', 'start the X̃ PGD at the clean image')
    .option('--adv-labels <which>', "X̃ attack pushes away from the true labels or the model's predictions (true|pred)", parseLabels, 'true')
    .addOption(new Option('--adv-from <which>', 'candidates that may give X̃: all, or only those the model classifies correctly clean').choices([...ADV_SOURCES]).default('all'))
    .option('--no-clip', 'do not clip adversarial images to [0, 1] (the paper authors do not clip)')
    .option('--eval-n <n>', 'test images for the clean and FGSM evaluation', parsePositiveInteger, 10000)
    .option('--pgd-n <n>', 'test images for the PGD evaluation (0 = skip)', parseNonNegativeInteger, 1000)
    .option('--eval-eps <e>', 'ε of the FGSM/PGD test evaluation', parsePositiveNumber, 0.1)
    .option('--pgd-steps <n>', 'PGD steps of the test evaluation', parsePositiveInteger, 40)
    .option('--pgd-step-size <a>', 'PGD step size of the test evaluation', parsePositiveNumber, 0.01)
    .addOption(new Option('--sweep <list>', 'FGSM ε values for the robustness plot (none = skip)').argParser(parseEpsList).default([0.05, 0.1, 0.15, 0.2], '0.05,0.1,0.15,0.2'))
    .option('--no-eval', 'skip the test-set evaluation')
    .option('--dump-qp <dir>', 'write every QP subproblem as QPS and LP into dir')
    .option('--backend <name>', 'tensor backend: auto, tensorflow, native, wasm, cpu', parseBackend)
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print one JSON object (result.json) on stdout');
}

/** Option keys of CorrectionOptionsInput → the commander flag that sets them. */
const OPTION_FLAGS: Record<string, string> = {
  delta: 'delta',
  tau: 'tau',
  maxIterations: 'iterations',
  alphas: 'alphas',
  omega: 'omega',
  rounds: 'rounds',
  cutSlack: 'cutSlack',
  activeTolerance: 'activeTol',
  layers: 'layers',
  patience: 'patience',
  nAdversarial: 'nAdv',
  cleanSize: 'cleanSize',
};
const ATTACK_FLAGS: Record<string, string> = { eps: 'advEps', steps: 'advSteps', stepSize: 'advStepSize', restarts: 'advRestarts', randomStart: 'advRandomStart' };

/**
 * Replaces, in `flags`, every value the user left at its generic default by the data set's preset
 * (lib/correction/presets.ts); flags given on the command line win. Returns the names it set.
 */
export function applyDatasetPreset(cmd: Command, flags: Record<string, unknown>, dataset: string): string[] {
  const preset = DATASET_PRESETS[dataset];
  if (!preset) return [];
  const set: string[] = [];
  const put = (flag: string, value: unknown) => {
    if (value === undefined || cmd.getOptionValueSource(flag) !== 'default') return;
    flags[flag] = Array.isArray(value) ? [...value] : value;
    set.push(flag);
  };
  for (const [key, value] of Object.entries(preset.options)) {
    if (key === 'attack') continue;
    const flag = OPTION_FLAGS[key];
    if (!flag) throw new Error(`internal: preset option ${key} has no flag`);
    put(flag, value);
  }
  for (const [key, value] of Object.entries(preset.options.attack ?? {})) put(ATTACK_FLAGS[key]!, value);
  put('advCandidates', preset.advCandidates);
  put('advFrom', preset.advFrom);
  put('evalEps', preset.evalEps);
  put('pgdSteps', preset.pgdSteps);
  put('pgdStepSize', preset.pgdStepSize);
  put('sweep', preset.sweep);
  put('evalN', preset.evalN);
  put('pgdN', preset.pgdN);
  return set;
}

/** Commander flags → run settings. */
export function settingsFromFlags(flags: Record<string, unknown>, base: { model: string; arch?: ArchName; out: string; dataset: DatasetName }): CorrectionRunSettings {
  const input: CorrectionOptionsInput = {
    delta: flags.delta as number,
    tau: flags.tau as number,
    ...(flags.eta !== undefined ? { eta: flags.eta as number } : {}),
    maxIterations: flags.iterations as number,
    alphas: flags.alphas as number[],
    omega: flags.omega as number,
    rounds: flags.rounds as number,
    cutClasses: flags.cutClasses as 'all' | 'worst',
    activeTolerance: flags.activeTol as number,
    cutSlack: flags.cutSlack as number,
    violation: flags.violation as 'sum' | 'fraction',
    layers: flags.layers as 'all' | string[],
    solver: flags.solver as 'dual' | 'admm',
    qpEps: flags.qpEps as number,
    qpTimeLimitMs: (flags.qpTimeLimit as number) * 1000,
    maxCuts: flags.maxCuts as number,
    dropInactiveAfter: flags.dropInactive as number,
    patience: flags.patience as number,
    seed: flags.seed as number,
    nAdversarial: flags.nAdv as number,
    cleanSize: flags.cleanSize as number,
    attack: {
      eps: flags.advEps as number,
      steps: flags.advSteps as number,
      stepSize: flags.advStepSize as number,
      restarts: flags.advRestarts as number,
      randomStart: flags.advRandomStart as boolean,
    },
  };
  return {
    ...base,
    options: resolveCorrectionOptions(input),
    advCandidates: flags.advCandidates as number,
    advOffset: flags.advOffset as number,
    advLabels: flags.advLabels as 'true' | 'pred',
    advFrom: (flags.advFrom as AdvSource | undefined) ?? 'all',
    clip: flags.clip as boolean,
    evalN: flags.evalN as number,
    pgdN: flags.pgdN as number,
    evalEps: flags.evalEps as number,
    pgdSteps: flags.pgdSteps as number,
    pgdStepSize: flags.pgdStepSize as number,
    sweep: flags.sweep as number[],
    evaluateModels: flags.eval as boolean,
    ...(flags.dumpQp ? { dumpQp: path.resolve(flags.dumpQp as string) } : {}),
  };
}

export function register(program: Command): void {
  registerCorrect(program);
  registerDemo(program);
}

function kebab(flag: string): string {
  return `--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function registerCorrect(program: Command): void {
  const cmd = program
    .command('correct')
    .description(
      'Adversary correction: make X̃ by PGD on training images, find the smallest weight change that classifies X̃ correctly ' +
        'with margin δ while the clean loss stays ≤ η (cutting planes + native QPs), evaluate before/after on the test set, ' +
        'and write model/, result.json and report.html into --out. Ctrl-C checkpoints; --resume DIR continues. ' +
        'With --dataset cifar10 the flags you do not give take the CIFAR-10 preset (X̃ at ε 2/255 from correctly classified images, ' +
        '500 clean images, 3 rounds of 8 iterations, evaluation at ε 2/255; docs/results-cifar10.md) instead of the MNIST defaults shown below.',
    )
    .option('--model <path>', 'tfjs model.json (or its directory), or a PyTorch .npz with --arch')
    .option('--arch <arch>', `architecture of an .npz model (${ARCH_NAMES.join(', ')})`, parseArch)
    .option('--dataset <name>', `data set (${DATASET_NAMES.join(', ')})`, parseDatasetName, 'mnist')
    .option('--out <dir>', 'output directory')
    .option('--resume <dir>', 'continue the interrupted run in dir (its run.json and checkpoint; other options are ignored)');
  addCorrectionOptions(cmd).action(async (flags: Record<string, unknown>) => {
    const io: RunIo = { json: Boolean(flags.json), quiet: Boolean(flags.quiet), resume: Boolean(flags.resume), ...(flags.backend ? { backend: flags.backend as BackendRequest } : {}) };
    let settings: CorrectionRunSettings;
    if (flags.resume) {
      const dir = path.resolve(flags.resume as string);
      const file = path.join(dir, RUN_FILE);
      if (!existsSync(file)) throw new AdvcorrectError('ERR_IO', `${dir} holds no ${RUN_FILE}: nothing to resume`);
      settings = JSON.parse(await fs.readFile(file, 'utf8')) as CorrectionRunSettings;
      settings.out = dir;
      settings.options = resolveCorrectionOptions(settings.options as CorrectionOptionsInput);
    } else {
      if (typeof flags.model !== 'string') throw new TypeError('--model is required (or --resume DIR)');
      if (typeof flags.out !== 'string') throw new TypeError('--out is required');
      if (flags.model.endsWith('.npz') && !flags.arch) throw new TypeError(`--arch is required for an .npz model (one of ${ARCH_NAMES.join(', ')})`);
      const preset = applyDatasetPreset(cmd, flags, flags.dataset as string);
      if (preset.length > 0 && !io.quiet) process.stderr.write(`${flags.dataset as string} defaults (lib/correction/presets.ts) for: ${preset.map(kebab).join(', ')}\n`);
      settings = settingsFromFlags(flags, {
        model: path.resolve(flags.model),
        ...(flags.arch ? { arch: flags.arch as ArchName } : {}),
        out: path.resolve(flags.out),
        dataset: flags.dataset as DatasetName,
      });
    }
    const doc = await runCorrection(settings, io);
    if (io.json) printJson(doc);
    else process.stdout.write(`${summaryTable(doc, settings.out)}\n`);
  });
}
