/**
 * `runBaseline`: one of the baselines end to end, on exactly the data `correct` uses for the same
 * seed and offset — the same clean subset, candidate slice and X̃ (lib/runs/split.ts) — evaluated
 * like `correct` and written like it (model/, model.npz, result.json, report.html).
 */
import { ensureDir } from '../util/files.js';
import { activeBackend, initBackend } from '../backend/index.js';
import { loadDataset, type DatasetName, type ImageDataset } from '../data/datasets.js';
import { takeFirst } from '../data/sampling.js';
import type { ArchName } from '../models/architectures.js';
import { biasShift, finetune, findShiftTarget, pgdFinetune, snapshotWeights, weightDistance, type BaselineMethod, type LabelledImages } from '../baselines/index.js';
import type { BaselineDocument, RobustnessSweep } from '../report/index.js';
import { checkModelFitsData, drawAdversarial, inputSpace, trainingSplit, type DrawSettings } from './split.js';
import { describeEvaluation, evaluateOnTest, notEvaluated, type EvaluationSettings, type TestEvaluation } from './evaluation.js';
import { writeModelOutputs, writeRunDocument } from './outputs.js';
import { readRunDocument, methodTimeMs } from './documents.js';
import { headline, runSignal, say, type RunIo } from './io.js';
import { loadRunModel, type ModelSettings } from './model.js';

export interface BaselineRunSettings extends ModelSettings {
  method: BaselineMethod;
  dataset: DatasetName;
  out: string;
  /** The split and X̃, as `correct` draws them (rounds is taken as 1). */
  draw: DrawSettings;
  /** The test evaluation before and after. */
  evaluation: EvaluationSettings;
  evaluateModels: boolean;
  /** bias-shift: the clean accuracy to match, or a run directory whose after.clean it takes. */
  targetClean?: number;
  matchClean?: string;
  /** finetune / pgd-finetune: Adam learning rate, batch size. */
  learningRate?: number;
  batchSize?: number;
  /** finetune: epoch cap, copies of X̃ per epoch. */
  maxEpochs?: number;
  advRepeat?: number;
  /** pgd-finetune: budget in seconds, or a run directory whose method time it takes. */
  budgetS?: number;
  matchTime?: string;
}

/** What the method needs from other runs, read before anything is written. */
interface Resolved {
  targetClean?: number;
  /** Test images the target clean accuracy was measured on. */
  matchN?: number;
  budgetMs?: number;
}

async function resolveTargets(s: BaselineRunSettings): Promise<Resolved> {
  if (s.method === 'bias-shift') {
    if (s.matchClean !== undefined) {
      const doc = await readRunDocument(s.matchClean, '--match-clean');
      const target = doc.after?.clean?.accuracy;
      if (typeof target !== 'number' || !Number.isFinite(target)) throw new RangeError(`--match-clean: ${s.matchClean}/result.json has no clean accuracy after (was it run with --no-eval?)`);
      const dataset = doc.evaluation.dataset ?? (doc.settings as { dataset?: string }).dataset;
      if (dataset !== undefined && dataset !== s.dataset) throw new RangeError(`--match-clean: that run was evaluated on ${dataset}, this one is on ${s.dataset}`);
      return { targetClean: target, matchN: doc.evaluation.n };
    }
    if (s.targetClean === undefined) throw new TypeError('bias-shift needs --target-clean A or --match-clean DIR');
    return { targetClean: s.targetClean, matchN: s.evaluation.evalN };
  }
  if (s.method === 'pgd-finetune') {
    if (s.matchTime !== undefined) {
      const ms = methodTimeMs(await readRunDocument(s.matchTime, '--match-time'));
      if (!(ms > 0)) throw new RangeError(`--match-time: ${s.matchTime}/result.json records no method time`);
      return { budgetMs: ms };
    }
    if (s.budgetS === undefined) throw new TypeError('pgd-finetune needs --budget-s S or --match-time DIR');
    return { budgetMs: s.budgetS * 1000 };
  }
  return {};
}

function labelled(ds: ImageDataset, normalization: Parameters<typeof inputSpace>[1]): LabelledImages {
  return { images: inputSpace(ds.images, normalization, ds.channels), labels: ds.labels };
}

/** Runs a baseline as `advcorrect baseline` does and returns its result.json. */
export async function runBaseline(settings: BaselineRunSettings, io: RunIo): Promise<BaselineDocument> {
  const started = Date.now();
  const s = settings;
  const resolved = await resolveTargets(s);
  const backend = await initBackend(io.backend);
  const loaded = await loadRunModel(s, io);
  const arch = s.arch ?? loaded.arch;
  // Refuse a method that does not fit the model before anything is written.
  if (s.method === 'bias-shift') findShiftTarget(loaded.model);
  const { signal, release } = runSignal(io);
  try {
    const [train, test] = await Promise.all([loadDataset(s.dataset, 'train'), loadDataset(s.dataset, 'test')]);
    checkModelFitsData(loaded, train, s.dataset);
    const draw: DrawSettings = { ...s.draw, rounds: 1 };
    const split = trainingSplit(train, draw);
    const norm = loaded.normalization;
    await ensureDir(s.out);

    let evaluationMs = 0;
    let before: TestEvaluation | undefined;
    if (s.evaluateModels) {
      const t0 = Date.now();
      say(io, `evaluating the input model on ${s.evaluation.evalN} test images …`);
      const key = JSON.stringify([s.model, s.evaluation]);
      before = io.beforeCache?.get(key) ?? (await evaluateOnTest(loaded, test, s.evaluation, { signal, onProgress: io.evaluationProgress?.('before') }));
      io.beforeCache?.set(key, before);
      say(io, `before: ${headline(before)}`);
      evaluationMs += Date.now() - t0;
    }

    const w0 = snapshotWeights(loaded.model);
    const t0 = Date.now();
    const progress = (line: string): void => (io.baselineProgress ? io.baselineProgress(line) : say(io, line));
    let methodSettings: Record<string, unknown>;
    let methodResult: Record<string, unknown>;
    let trainMs: number | undefined;
    if (s.method === 'bias-shift') {
      const n = Math.min(resolved.matchN!, test.count);
      say(io, `bias-shift: searching the shift that gives clean accuracy ${resolved.targetClean} on the first ${n} test images …`);
      const r = await biasShift(loaded.model, labelled(takeFirst(test, n), norm), {
        targetAccuracy: resolved.targetClean!,
        signal,
        onStep: (step) => progress(`  shift ${step.shift.toFixed(5)}: clean ${(100 * step.accuracy).toFixed(2)}%`),
      });
      methodSettings = s.matchClean !== undefined ? { target: 'match-clean' } : { target: 'target-clean', targetClean: s.targetClean };
      methodResult = {
        layer: r.target.layer,
        tensor: r.target.tensor,
        shifted: r.target.reason,
        shift: r.shift,
        targetClean: r.targetAccuracy,
        searchN: n,
        searchAccuracy: r.accuracy,
        matched: r.matched,
        searchSteps: r.steps.length,
        ...(s.matchClean !== undefined ? { matchClean: s.matchClean } : {}),
      };
    } else if (s.method === 'finetune') {
      say(io, `finetune: drawing X̃ (${draw.nAdversarial} examples, PGD ε ${draw.attack.eps}) from ${draw.advCandidates} training images, as correct does …`);
      const adversarial = await drawAdversarial(loaded, split.candidates(1), draw, 1, signal);
      const r = await finetune(loaded.model, labelled(adversarial, norm), labelled(split.clean, norm), {
        ...(s.learningRate !== undefined ? { learningRate: s.learningRate } : {}),
        ...(s.maxEpochs !== undefined ? { maxEpochs: s.maxEpochs } : {}),
        ...(s.batchSize !== undefined ? { batchSize: s.batchSize } : {}),
        ...(s.advRepeat !== undefined ? { advRepeat: s.advRepeat } : {}),
        seed: draw.seed,
        signal,
        onEpoch: (e) => progress(`  epoch ${e.epoch}/${e.maxEpochs}: loss ${e.loss.toFixed(4)}, X̃ correct ${e.advCorrect}/${e.advCount}`),
      });
      methodSettings = { learningRate: r.learningRate, maxEpochs: r.maxEpochs, batchSize: r.batchSize, advRepeat: r.advRepeat, nAdversarial: draw.nAdversarial };
      methodResult = { epochs: r.epochs, reached: r.reached, advCorrectBefore: r.advCorrectBefore, advCorrectAfter: r.advCorrectAfter, advCount: adversarial.count, losses: r.losses };
    } else {
      const images = labelled(split.clean, norm);
      const candidates = labelled(split.candidates(1), norm);
      const trainSet: LabelledImages = {
        images: concat(images.images, candidates.images),
        labels: Uint8Array.from([...Array.from(images.labels), ...Array.from(candidates.labels)]),
      };
      say(io, `pgd-finetune: PGD adversarial fine-tuning on ${trainSet.labels.length} training images (clean subset + candidate slice) for ${(resolved.budgetMs! / 1000).toFixed(1)} s …`);
      const r = await pgdFinetune(loaded.model, trainSet, {
        budgetMs: resolved.budgetMs!,
        attack: { eps: draw.attack.eps, steps: draw.attack.steps, stepSize: draw.attack.stepSize, randomStart: draw.attack.randomStart },
        clip: draw.clip,
        ...(norm ? { normalization: norm } : {}),
        ...(s.learningRate !== undefined ? { learningRate: s.learningRate } : {}),
        ...(s.batchSize !== undefined ? { batchSize: s.batchSize } : {}),
        seed: draw.seed,
        signal,
        onBatch: (b) => {
          if (b.batch % 10 === 0) progress(`  batch ${b.batch} (epoch ${b.epoch + 1}): loss ${b.loss.toFixed(4)}, ${(b.elapsedMs / 1000).toFixed(1)} of ${(b.budgetMs / 1000).toFixed(1)} s`);
        },
      });
      trainMs = r.trainTimeMs;
      methodSettings = {
        budget: s.matchTime !== undefined ? 'match-time' : 'budget-s',
        ...(s.matchTime === undefined ? { budgetS: s.budgetS } : {}),
        learningRate: r.learningRate,
        batchSize: r.batchSize,
        attack: { name: 'pgd', ...draw.attack },
      };
      methodResult = {
        budgetMs: r.budgetMs,
        ...(s.matchTime !== undefined ? { matchTime: s.matchTime } : {}),
        trainTimeMs: r.trainTimeMs,
        maxBatchMs: r.maxBatchMs,
        batches: r.batches,
        epochs: r.epochs,
        trainImages: trainSet.labels.length,
        adversarialLossBefore: r.adversarialLossBefore,
        adversarialLossAfter: r.adversarialLossAfter,
        probeImages: r.probeCount,
      };
    }
    // pgd-finetune: the budgeted training only (its adversarial-loss probes are measurement).
    const methodMs = trainMs ?? Date.now() - t0;
    const { distance, relativeDistance } = weightDistance(loaded.model, w0);

    let after: TestEvaluation | undefined;
    if (s.evaluateModels) {
      const t1 = Date.now();
      say(io, `evaluating the ${s.method} model …`);
      after = await evaluateOnTest(loaded, test, s.evaluation, { signal, onProgress: io.evaluationProgress?.('after') });
      evaluationMs += Date.now() - t1;
    }
    const outputs = await writeModelOutputs(s.out, loaded.model, loaded, arch);
    const sweep: RobustnessSweep | undefined =
      before && after && s.evaluation.sweep.length > 0
        ? { attack: 'fgsm', points: s.evaluation.sweep.map((eps) => ({ eps, before: before!.sweep.get(eps)!, after: after!.sweep.get(eps)! })) }
        : undefined;
    const { out: _out, ...rest } = s;
    const doc: BaselineDocument = {
      format: 'advcorrect-result',
      formatVersion: 1,
      kind: 'baseline',
      method: s.method,
      methodSettings,
      methodResult,
      createdAt: new Date().toISOString(),
      settings: { ...rest, out: s.out, command: `advcorrect baseline --method ${s.method}`, ...(arch ? { arch } : {}) },
      backend: activeBackend() ?? backend,
      evaluation: describeEvaluation(s.evaluation, test, s.dataset),
      before: before?.metrics ?? notEvaluated(s.evaluation),
      after: after?.metrics ?? notEvaluated(s.evaluation),
      ...(sweep ? { sweep } : {}),
      distance,
      relativeDistance,
      outputs,
      methodTimeMs: methodMs,
      wallTimeMs: 0,
    };
    (doc as BaselineDocument & { timing?: unknown }).timing = { methodMs, evaluationMs };
    doc.wallTimeMs = Date.now() - started;
    await writeRunDocument(s.out, doc);
    return doc;
  } finally {
    release();
    loaded.model.dispose();
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
