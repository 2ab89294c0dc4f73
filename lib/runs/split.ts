/**
 * The seeded training split a run works on, and the drawing of X̃. `correct` and every baseline
 * call these, so the same seed and offset give the same clean subset, the same candidate slices
 * and the same X̃.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../errors.js';
import { normalize, type ImageDataset, type Normalization } from '../data/datasets.js';
import { shuffleIndices, subset } from '../data/sampling.js';
import type { LoadedModel } from '../models/io.js';
import { generateAdversarialSet } from '../attacks/adversarial-set.js';
import { predictLogitsAsync } from '../models/index.js';
import type { AdvSource } from '../correction/presets.js';

/** How a run splits the training set and draws X̃ (the part `correct` and the baselines share). */
export interface DrawSettings {
  /** Seed of the permutation and of the X̃ attack. */
  seed: number;
  /** Training images in the clean subset (the first of the seeded permutation). */
  cleanSize: number;
  /** |X̃| per round. */
  nAdversarial: number;
  /** The PGD attack that makes X̃. */
  attack: { eps: number; steps: number; stepSize: number; restarts: number; randomStart: boolean };
  /** Training images attacked per round (a slice of the permutation after the clean subset). */
  advCandidates: number;
  /** Extra offset into the permutation for the candidates (another draw of X̃). */
  advOffset: number;
  advLabels: 'true' | 'pred';
  /**
   * Which candidates may give X̃: 'all', or only those the current model classifies correctly clean
   * ('correct': X̃ holds real adversarial flips, not images the model gets wrong anyway). Default 'all'.
   */
  advFrom?: AdvSource;
  clip: boolean;
  /** Rounds that each take one candidate slice. */
  rounds: number;
}

export interface TrainingSplit {
  /** The clean-loss subset. */
  clean: ImageDataset;
  /** The candidate slice of a round (1-based). */
  candidates(round: number): ImageDataset;
}

/** The seeded split of the training set: clean subset first, then the X̃ candidate slices (one per round). */
export function trainingSplit(train: ImageDataset, s: DrawSettings): TrainingSplit {
  const need = s.cleanSize + s.advOffset + s.advCandidates * s.rounds;
  if (need > train.count) {
    throw new RangeError(`--clean-size + --adv-offset + --adv-candidates × --rounds = ${need} exceeds the ${train.count} training images`);
  }
  const perm = shuffleIndices(train.count, s.seed);
  const clean = subset(train, perm.subarray(0, s.cleanSize), `${train.name}-clean`);
  const candidates = (round: number): ImageDataset => {
    const start = s.cleanSize + s.advOffset + (round - 1) * s.advCandidates;
    return subset(train, perm.subarray(start, start + s.advCandidates), `${train.name}-adv-r${round}`);
  };
  return { clean, candidates };
}

/** The candidates (pixel space) that the model classifies correctly clean, in order: the only sources of X̃ under `advFrom: 'correct'`. */
export async function correctlyClassified(model: LayersModel | LoadedModel, candidates: ImageDataset, signal?: AbortSignal): Promise<ImageDataset> {
  const loaded = 'inputShape' in model ? model : undefined;
  const layers = loaded ? loaded.model : (model as LayersModel);
  const input = inputSpace(candidates.images, loaded?.normalization, candidates.channels);
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

/** X̃ of one round: class-balanced, most violated first (PGD), exactly nAdversarial examples, in pixel space. */
export async function drawAdversarial(model: LayersModel | LoadedModel, slice: ImageDataset, s: DrawSettings, round: number, signal?: AbortSignal): Promise<ImageDataset> {
  const candidates = (s.advFrom ?? 'all') === 'correct' ? await correctlyClassified(model, slice, signal) : slice;
  const perClass = Math.ceil(s.nAdversarial / candidates.numClasses);
  const a = s.attack;
  const set = await generateAdversarialSet(model, candidates, {
    perClass,
    attack: { name: 'pgd', eps: a.eps, steps: a.steps, stepSize: a.stepSize, randomStart: a.randomStart, restarts: a.restarts },
    labels: s.advLabels,
    clip: s.clip,
    sort: true,
    seed: s.seed + 1000 * round,
    ...(signal ? { signal } : {}),
  });
  if (set.dataset.count === s.nAdversarial) return set.dataset;
  // Not a multiple of the class count: keep the most violated overall.
  const order = Array.from(set.margins.keys()).sort((x, y) => set.margins[x]! - set.margins[y]!).slice(0, s.nAdversarial);
  return subset(set.dataset, order.sort((x, y) => x - y));
}

/** Pixel-space images → the model's input space. */
export function inputSpace(images: Float32Array, normalization: Normalization | undefined, channels: number): Float32Array {
  return normalization ? normalize(images, normalization, channels) : images;
}

/** The model's input space → pixels. */
export function pixelSpace(images: Float32Array, normalization: Normalization | undefined, channels: number): Float32Array {
  if (!normalization) return images;
  const { mean, std } = normalization;
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = images[i]! * std[i % channels]! + mean[i % channels]!;
  return out;
}

/** Checks that a model fits a data set (input shape and class count). */
export function checkModelFitsData(loaded: LoadedModel, data: ImageDataset, datasetName: string): void {
  if (loaded.inputShape.join('x') !== [data.height, data.width, data.channels].join('x')) {
    throw new AdvcorrectError('ERR_DATA', `the model takes inputs of shape [${loaded.inputShape.join(', ')}] but ${datasetName} images are [${data.height}, ${data.width}, ${data.channels}]`);
  }
  if (loaded.numClasses !== data.numClasses) throw new AdvcorrectError('ERR_DATA', `the model has ${loaded.numClasses} classes, ${datasetName} has ${data.numClasses}`);
}
