/**
 * `runCorrection`: a correction end to end as `advcorrect correct` runs it — the seeded training
 * split, X̃ per round, the test evaluation before and after, the outputs (model/, model.npz,
 * result.json, report.html) and checkpoint/resume. The CLI only parses flags and prints.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';
import { cleanLoss } from '../models/index.js';
import { activeBackend, initBackend, type BackendRequest } from '../backend/index.js';
import { loadDataset, type DatasetName } from '../data/datasets.js';
import { ensureDir, writeFileAtomic } from '../util/files.js';
import type { ArchName } from '../models/architectures.js';
import { correct, type CorrectionState, type CutQpSnapshot, type LabelledImages } from '../correction/correct.js';
import { loadCheckpoint, saveCheckpoint } from '../correction/checkpoint.js';
import { checkBudgetFits } from '../correction/stopping.js';
import { resolveCorrectionOptions, upgradeSavedOptions, type CorrectionOptions, type CorrectionOptionsInput } from '../correction/options.js';
import type { CorrectionProgress } from '../correction/types.js';
import type { AdvSource } from '../correction/presets.js';
import { quantiseImages, type ResultDocument, type RobustnessSweep } from '../report/index.js';
import { checkModelFitsData, drawAdversarial, inputSpace, pixelSpace, trainingSplit, type DrawSettings } from './split.js';
import { DEFAULT_EVALUATION_ATTACKS, describeEvaluation, evaluateOnTest, notEvaluated, type EvaluationSettings, type TestEvaluation } from './evaluation.js';
import { writeModelOutputs, writeRunDocument } from './outputs.js';
import { headline, runSignal, say, type RunIo } from './io.js';
import { loadRunModel, type ModelSettings } from './model.js';

/** Everything a correction run depends on (saved as run.json so --resume repeats it exactly). */
export interface CorrectionRunSettings extends ModelSettings {
  dataset: DatasetName;
  out: string;
  /** Correction options (options.ts). */
  options: CorrectionOptions;
  /** Training images attacked per round to find X̃ (a slice of the seeded training permutation after the clean subset). */
  advCandidates: number;
  /** Extra offset into the permutation for X̃ (to draw other X̃ with the same seed). */
  advOffset: number;
  advLabels: 'true' | 'pred';
  /** Which candidates may give X̃ (DrawSettings.advFrom); missing in run.json files older than the option: 'all'. */
  advFrom?: AdvSource;
  clip: boolean;
  /** Test evaluation: first evalN test images for clean/FGSM, first pgdN for the iterative attacks (0 = skip them). */
  evalN: number;
  pgdN: number;
  evalEps: number;
  pgdSteps: number;
  pgdStepSize: number;
  /** Attacks of the test evaluation (default fgsm, pgd, apgd-ce, apgd-t) and their optional settings. */
  attacks?: string[];
  apgdSteps?: number;
  targets?: number;
  queries?: number;
  /** FGSM ε sweep for the report ([] = none). */
  sweep: number[];
  evaluateModels: boolean;
  dumpQp?: string;
}

/** The file in --out that --resume reads. */
export const RUN_FILE = 'run.json';

/** The split/X̃ part of a correction's settings (what the baselines share). */
export function drawSettingsOf(s: CorrectionRunSettings): DrawSettings {
  const o = s.options;
  return {
    seed: o.seed,
    cleanSize: o.cleanSize,
    nAdversarial: o.nAdversarial,
    attack: { eps: o.attack.eps, steps: o.attack.steps, stepSize: o.attack.stepSize, restarts: o.attack.restarts, randomStart: o.attack.randomStart },
    advCandidates: s.advCandidates,
    advOffset: s.advOffset,
    advLabels: s.advLabels,
    advFrom: s.advFrom ?? 'all',
    clip: s.clip,
    rounds: o.rounds,
  };
}

/** The evaluation part of a run's settings. */
export function evaluationSettingsOf(
  s: Pick<CorrectionRunSettings, 'attacks' | 'evalN' | 'pgdN' | 'evalEps' | 'pgdSteps' | 'pgdStepSize' | 'sweep' | 'clip' | 'apgdSteps' | 'targets' | 'queries'>,
  seed: number,
): EvaluationSettings {
  return {
    ...(s.apgdSteps !== undefined ? { apgdSteps: s.apgdSteps } : {}),
    ...(s.targets !== undefined ? { targets: s.targets } : {}),
    ...(s.queries !== undefined ? { queries: s.queries } : {}),
    attacks: s.attacks ?? [...DEFAULT_EVALUATION_ATTACKS],
    evalN: s.evalN,
    pgdN: s.pgdN,
    evalEps: s.evalEps,
    pgdSteps: s.pgdSteps,
    pgdStepSize: s.pgdStepSize,
    sweep: s.sweep,
    clip: s.clip,
    seed,
  };
}

/** Reads the run.json of an interrupted run (for --resume). */
export async function readRunSettings(dir: string): Promise<CorrectionRunSettings> {
  const file = path.join(dir, RUN_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new AdvcorrectError('ERR_IO', `${dir} holds no ${RUN_FILE}: nothing to resume`);
  }
  const settings = JSON.parse(text) as CorrectionRunSettings;
  settings.out = dir;
  // run.json files written before 0.2.0 name some options the old way (qpEps).
  settings.options = resolveCorrectionOptions(upgradeSavedOptions(settings.options as CorrectionOptionsInput));
  return settings;
}

/** Runs a correction as the CLI does (also `advcorrect demo` and bench/results.ts). */
export async function runCorrection(settings: CorrectionRunSettings, io: RunIo): Promise<ResultDocument> {
  const started = Date.now();
  const s = settings;
  const backend = await initBackend(io.backend);
  // A model that does not load (or does not fit) is refused before anything is written.
  const loaded = await loadRunModel(s, io);
  const { signal, release } = runSignal(io);
  try {
    const arch = s.arch ?? loaded.arch;
    const [train, test] = await Promise.all([loadDataset(s.dataset, 'train'), loadDataset(s.dataset, 'test')]);
    checkModelFitsData(loaded, train, s.dataset);
    const draw = drawSettingsOf(s);
    const split = trainingSplit(train, draw);
    const channels = train.channels;
    const evaluation = evaluationSettingsOf(s, s.options.seed);
    let evaluationMs = 0;

    // A time budget shorter than one iteration is refused before anything is written or evaluated:
    // one forward pass over the clean subset, timed after a warm-up pass on a few of its images.
    if (s.options.budgetSeconds !== undefined && !io.resume) {
      const cleanInputs = inputSpace(split.clean.images, loaded.normalization, channels);
      const size = train.height * train.width * channels;
      const few = Math.min(8, split.clean.count);
      await cleanLoss(loaded.model, cleanInputs.subarray(0, few * size), split.clean.labels.subarray(0, few), { signal });
      const t0 = performance.now();
      await cleanLoss(loaded.model, cleanInputs, split.clean.labels, { signal });
      checkBudgetFits(s.options.budgetSeconds, performance.now() - t0, s.options.alphas.length, split.clean.count);
    }
    await ensureDir(s.out);
    if (!io.resume) await writeFileAtomic(path.join(s.out, RUN_FILE), `${JSON.stringify(s, null, 2)}\n`);

    let before: TestEvaluation | undefined;
    if (s.evaluateModels) {
      const t0 = Date.now();
      say(io, `evaluating the input model on ${s.evalN} test images (${evaluation.attacks.filter((a) => a !== 'fgsm').join(', ') || 'no iterative attack'} on ${s.pgdN}) …`);
      const key = JSON.stringify([s.model, evaluation]);
      before = io.beforeCache?.get(key) ?? (await evaluateOnTest(loaded, test, evaluation, { signal, onProgress: io.evaluationProgress?.('before') }));
      io.beforeCache?.set(key, before);
      say(io, `before: ${headline(before)}`);
      evaluationMs += Date.now() - t0;
    }

    let resume: CorrectionState | undefined;
    let adversarial;
    let firstDrawMs = 0;
    let regenerateMs = 0;
    if (io.resume) {
      resume = (await loadCheckpoint(s.out)) as CorrectionState;
      const first = resume.advRounds.findIndex((r) => r !== 1);
      const count = first < 0 ? resume.advLabels.length : first;
      adversarial = { ...train, name: 'adversarial', images: resume.advImages.slice(0, count * resume.inputSize), labels: resume.advLabels.slice(0, count), count };
      say(io, `resuming from round ${resume.round}, iteration ${resume.iteration}${resume.done ? ' (finished)' : ''}`);
    } else {
      say(io, `making ${s.options.nAdversarial} adversarial examples (PGD ε ${s.options.attack.eps}, ${s.options.attack.steps} × ${s.options.attack.stepSize}) from ${s.advCandidates} training images …`);
      const t0 = Date.now();
      adversarial = await drawAdversarial(loaded, split.candidates(1), draw, 1, signal);
      firstDrawMs = Date.now() - t0;
    }

    const progress = io.correctionProgress?.(s.options.maxIterations * s.options.rounds);
    const onProgress = (e: CorrectionProgress): void => {
      if (e.kind === 'start') say(io, `correcting ${e.parameters} parameters: |X̃| = ${e.adversarial}, V = ${e.violation.toFixed(3)}, clean loss ${e.cleanLoss.toFixed(4)}, η = ${e.eta.toFixed(4)}`);
      else if (e.kind === 'round') say(io, `round ${e.round}: |X̃| = ${e.adversarial}`);
      else if (e.kind === 'infeasible') say(io, `round ${e.round} iteration ${e.iteration}: infeasible QP, dropped ${e.dropped} cuts`);
      progress?.update(e);
    };
    const norm = loaded.normalization;
    const clean: LabelledImages = { images: inputSpace(split.clean.images, norm, channels), labels: split.clean.labels };
    const adv: LabelledImages = { images: inputSpace(adversarial.images, norm, channels), labels: adversarial.labels };
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
          say(io, `round ${round}: making ${s.options.nAdversarial} new adversarial examples against the corrected model …`);
          const t0 = Date.now();
          const ds = await drawAdversarial({ ...loaded, model }, split.candidates(round), draw, round, sig);
          regenerateMs += Date.now() - t0;
          return { images: inputSpace(ds.images, norm, channels), labels: ds.labels };
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
    await io.onOutput?.(output, loaded, test);
    const { model: corrected, result } = output;
    progress?.finish(result);
    if (result.budget) say(io, result.budget.notice);

    let after: TestEvaluation | undefined;
    if (s.evaluateModels) {
      const t0 = Date.now();
      say(io, 'evaluating the corrected model …');
      after = await evaluateOnTest({ ...loaded, model: corrected }, test, evaluation, { signal, onProgress: io.evaluationProgress?.('after') });
      evaluationMs += Date.now() - t0;
    }

    const outputs = await writeModelOutputs(s.out, corrected, loaded, arch);
    const sweep: RobustnessSweep | undefined =
      before && after && s.sweep.length > 0 ? { attack: 'fgsm', points: s.sweep.map((eps) => ({ eps, before: before!.sweep.get(eps)!, after: after!.sweep.get(eps)! })) } : undefined;
    const size = train.height * train.width * train.channels;
    const shown = quantiseImages(pixelSpace(output.state.advImages, norm, channels), result.adversarial.count, size);
    const doc: ResultDocument = {
      format: 'advcorrect-result',
      formatVersion: 1,
      createdAt: new Date().toISOString(),
      method: 'correct',
      settings: { ...s, options: undefined, command: 'advcorrect correct', ...(arch ? { arch } : {}) },
      backend: activeBackend() ?? backend,
      evaluation: describeEvaluation(evaluation, test, s.dataset),
      ...result,
      before: before?.metrics ?? notEvaluated(evaluation),
      after: after?.metrics ?? notEvaluated(evaluation),
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
      outputs,
      totalTimeMs: result.totalTimeMs,
      // X̃ of later rounds is drawn inside the loop, so totalTimeMs already holds that time.
      methodTimeMs: firstDrawMs + result.totalTimeMs,
      timing: { adversarialMs: firstDrawMs + regenerateMs, correctionMs: result.totalTimeMs, evaluationMs },
      wallTimeMs: 0,
    };
    doc.wallTimeMs = Date.now() - started;
    await writeRunDocument(s.out, doc);
    corrected.dispose();
    return doc;
  } finally {
    release();
  }
}
