import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../errors.js';
import { checkDataset, denormalize, normalize, type ImageDataset, type Normalization } from '../data/datasets.js';
import { writeFileAtomic } from '../util/files.js';
import { readIdx, writeIdx } from '../data/idx.js';
import { compileInputs, marginsFromLogits, predictLogitsAsync } from '../models/index.js';
import type { LoadedModel } from '../models/io.js';
import { fgsm, pgdWithMargins } from './attacks.js';
import { apgd, APGD_DEFAULTS } from './apgd.js';
import { square, SQUARE_DEFAULTS } from './square.js';
import type { AttackSpec } from './evaluate.js';

/** How an adversarial set was made (saved as settings.json). */
export interface AdversarialSetSettings {
  attack: Required<Pick<AttackSpec, 'name' | 'eps'>> & Omit<AttackSpec, 'name' | 'eps'>;
  labels: 'true' | 'pred';
  clip: boolean;
  perClass: number;
  /** Examples attacked: dataset indices [offset, offset + candidates). */
  offset: number;
  candidates: number;
  sort: boolean;
  seed: number;
  dataset?: string;
  split?: string;
  model?: string;
  createdAt?: string;
}

/** Adversarial examples (pixel space, like a data set) with where they came from. */
export interface AdversarialSet {
  /** The adversarial images and their true labels. */
  dataset: ImageDataset;
  /** Index of each example's clean image in the source data set. */
  sourceIndex: Int32Array;
  /** f_y − max_{j≠y} f_j at the adversarial image, y the true label (negative = misclassified). */
  margins: Float64Array;
  settings: AdversarialSetSettings;
}

export interface AdversarialSetOptions {
  /** Examples kept per class (class-balanced). */
  perClass: number;
  /** Attack; default PGD ε 0.1, 40 steps of 0.01, random start. */
  attack?: AttackSpec;
  labels?: 'true' | 'pred';
  clip?: boolean;
  /** First dataset index attacked (default 0) and how many are attacked (default: the rest of the set). */
  offset?: number;
  candidates?: number;
  /** Most violated first within each class (default true, as the paper's authors do); false keeps data set order. */
  sort?: boolean;
  seed?: number;
  normalization?: Normalization;
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
  /** Recorded in the settings. */
  describe?: { dataset?: string; split?: string; model?: string };
}

function isLoadedModel(value: unknown): value is LoadedModel {
  return typeof value === 'object' && value !== null && 'model' in value && 'inputShape' in value;
}

/**
 * Attacks a slice of a data set and keeps `perClass` adversarial examples of every true class,
 * most violated (lowest margin f_y − max_j f_j) first: the result is grouped by class (class 0's
 * examples, then class 1's, …), each group sorted by margin ascending unless `sort` is false.
 */
export async function generateAdversarialSet(model: LayersModel | LoadedModel, dataset: ImageDataset, options: AdversarialSetOptions): Promise<AdversarialSet> {
  const layers = isLoadedModel(model) ? model.model : model;
  const normalization = options.normalization ?? (isLoadedModel(model) ? model.normalization : undefined);
  checkDataset(dataset);
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { perClass } = options;
  if (!Number.isInteger(perClass) || perClass <= 0) throw new RangeError('perClass must be a positive integer');
  const offset = options.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0 || offset >= dataset.count) throw new RangeError(`offset must be an integer in [0, ${dataset.count})`);
  const candidates = options.candidates ?? dataset.count - offset;
  if (!Number.isInteger(candidates) || candidates <= 0 || offset + candidates > dataset.count) {
    throw new RangeError(`candidates must be a positive integer with offset + candidates ≤ ${dataset.count}`);
  }
  const attack: AttackSpec = options.attack ?? { name: 'pgd', eps: 0.1 };
  const labels = options.labels ?? 'true';
  const clip = options.clip ?? true;
  const sort = options.sort ?? true;
  const seed = options.seed ?? 0;
  const shape = compileInputs(layers);
  const size = shape.inputSize;
  if (size !== dataset.height * dataset.width * dataset.channels) throw new RangeError('the model input size does not match the data set images');
  const pixels = dataset.images.subarray(offset * size, (offset + candidates) * size);
  const trueLabels = dataset.labels.subarray(offset, offset + candidates);
  const input = normalization ? normalize(pixels, normalization, dataset.channels) : pixels;
  const common = {
    eps: attack.eps,
    labels,
    clip,
    ...(normalization ? { normalization } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  let adversarial: Float32Array;
  let margins: Float64Array;
  const attackSettings: AdversarialSetSettings['attack'] = { name: attack.name, eps: attack.eps };
  if (attack.name === 'fgsm') {
    adversarial = await fgsm(layers, input, trueLabels, common);
    margins = marginsFromLogits(await predictLogitsAsync(layers, adversarial, { signal: options.signal }), trueLabels, shape.numClasses);
  } else if (attack.name === 'pgd') {
    Object.assign(attackSettings, { steps: attack.steps ?? 40, stepSize: attack.stepSize ?? 0.01, restarts: attack.restarts ?? 1, randomStart: attack.randomStart ?? true });
    const { steps, stepSize, restarts, randomStart } = attackSettings;
    ({ images: adversarial, margins } = await pgdWithMargins(layers, input, trueLabels, { ...common, steps, stepSize, restarts, randomStart, seed }));
  } else if (attack.name === 'apgd-ce' || attack.name === 'apgd-t') {
    Object.assign(attackSettings, { steps: attack.steps ?? APGD_DEFAULTS.steps, restarts: attack.restarts ?? APGD_DEFAULTS.restarts, randomStart: attack.randomStart ?? APGD_DEFAULTS.randomStart });
    if (attack.name === 'apgd-t') attackSettings.targets = Math.min(attack.targets ?? APGD_DEFAULTS.targets, shape.numClasses - 1);
    const loss = attack.name === 'apgd-ce' ? 'ce' : 'dlr-targeted';
    ({ images: adversarial, margins } = await apgd(layers, input, trueLabels, { ...common, steps: attackSettings.steps, restarts: attackSettings.restarts, randomStart: attackSettings.randomStart, ...(attackSettings.targets ? { targets: attackSettings.targets } : {}), loss, seed }));
  } else if (attack.name === 'square') {
    attackSettings.queries = attack.queries ?? SQUARE_DEFAULTS.queries;
    ({ images: adversarial, margins } = await square(layers, input, trueLabels, { ...common, queries: attackSettings.queries, seed }));
  } else {
    throw new RangeError("attack.name must be one of 'fgsm', 'pgd', 'apgd-ce', 'apgd-t', 'square'");
  }
  const byClass: number[][] = Array.from({ length: dataset.numClasses }, () => []);
  for (let i = 0; i < candidates; i++) byClass[trueLabels[i]].push(i);
  const chosen: number[] = [];
  byClass.forEach((list, c) => {
    if (list.length < perClass) {
      throw new RangeError(`class ${c} has only ${list.length} examples among the ${candidates} candidates, ${perClass} requested`);
    }
    if (sort) list.sort((a, b) => margins[a] - margins[b] || a - b);
    chosen.push(...list.slice(0, perClass));
  });
  const out = new Float32Array(chosen.length * size);
  chosen.forEach((i, k) => out.set(adversarial.subarray(i * size, (i + 1) * size), k * size));
  const images = normalization ? denormalize(out, normalization, dataset.channels) : out;
  return {
    dataset: {
      name: `${dataset.name}-adversarial`,
      images,
      labels: Uint8Array.from(chosen, (i) => trueLabels[i]),
      count: chosen.length,
      height: dataset.height,
      width: dataset.width,
      channels: dataset.channels,
      numClasses: dataset.numClasses,
    },
    sourceIndex: Int32Array.from(chosen, (i) => offset + i),
    margins: Float64Array.from(chosen, (i) => margins[i]),
    settings: { attack: attackSettings, labels, clip, perClass, offset, candidates, sort, seed, ...(options.describe ?? {}) },
  };
}

const IMAGES_FILE = 'images.idx';
const LABELS_FILE = 'labels.idx';
const SETTINGS_FILE = 'settings.json';

/**
 * Saves a set in `dir`: images.idx (float32 [n, H, W, C], pixel space), labels.idx (uint8 [n]) and
 * settings.json (settings, source indices, margins). Each file is written atomically; settings.json
 * is written last, so a directory with it is complete.
 */
export async function saveAdversarialSet(set: AdversarialSet, dir: string): Promise<void> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('dir must be a non-empty string');
  checkDataset(set.dataset, 'set.dataset');
  const ds = set.dataset;
  await writeIdx(path.join(dir, IMAGES_FILE), { dtype: 'float32', dims: [ds.count, ds.height, ds.width, ds.channels], data: ds.images });
  await writeIdx(path.join(dir, LABELS_FILE), { dtype: 'uint8', dims: [ds.count], data: ds.labels });
  const json = {
    format: 'advcorrect-adversarial-set',
    version: 1,
    count: ds.count,
    numClasses: ds.numClasses,
    settings: set.settings,
    sourceIndex: Array.from(set.sourceIndex),
    margins: Array.from(set.margins),
  };
  await writeFileAtomic(path.join(dir, SETTINGS_FILE), `${JSON.stringify(json, null, 2)}\n`);
}

/** Loads a set saved by {@link saveAdversarialSet}; ERR_DATA on inconsistent files, ERR_IO when unreadable. */
export async function loadAdversarialSet(dir: string): Promise<AdversarialSet> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('dir must be a non-empty string');
  let json: {
    format?: string;
    count?: number;
    numClasses?: number;
    settings?: AdversarialSetSettings;
    sourceIndex?: number[];
    margins?: number[];
  };
  const settingsFile = path.join(dir, SETTINGS_FILE);
  let text: string;
  try {
    text = await readFile(settingsFile, 'utf8');
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `cannot read ${settingsFile}: ${(error as Error).message}`, { cause: error });
  }
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new AdvcorrectError('ERR_DATA', `${settingsFile} is not valid JSON`, { cause: error });
  }
  if (json.format !== 'advcorrect-adversarial-set' || !json.settings || typeof json.count !== 'number' || typeof json.numClasses !== 'number') {
    throw new AdvcorrectError('ERR_DATA', `${settingsFile} is not an advcorrect adversarial set`);
  }
  const images = await readIdx(path.join(dir, IMAGES_FILE));
  const labels = await readIdx(path.join(dir, LABELS_FILE));
  if (images.dtype !== 'float32' || images.dims.length !== 4) throw new AdvcorrectError('ERR_DATA', `${dir}/${IMAGES_FILE} must be float32 [n, H, W, C]`);
  if (labels.dtype !== 'uint8' || labels.dims.length !== 1) throw new AdvcorrectError('ERR_DATA', `${dir}/${LABELS_FILE} must be uint8 [n]`);
  const [count, height, width, channels] = images.dims;
  if (count !== json.count || labels.dims[0] !== count) {
    throw new AdvcorrectError('ERR_DATA', `${dir}: ${count} images, ${labels.dims[0]} labels, settings say ${json.count}`);
  }
  const sourceIndex = Int32Array.from(json.sourceIndex ?? []);
  const margins = Float64Array.from(json.margins ?? []);
  if (sourceIndex.length !== count || margins.length !== count) throw new AdvcorrectError('ERR_DATA', `${settingsFile}: sourceIndex/margins do not have ${count} entries`);
  const labelData = labels.data as Uint8Array;
  for (let i = 0; i < count; i++) {
    if (labelData[i] >= json.numClasses) throw new AdvcorrectError('ERR_DATA', `${dir}/${LABELS_FILE}: label ${labelData[i]} is not below ${json.numClasses}`);
  }
  return {
    dataset: {
      name: path.basename(path.resolve(dir)),
      images: images.data as Float32Array,
      labels: labelData,
      count,
      height,
      width,
      channels,
      numClasses: json.numClasses,
    },
    sourceIndex,
    margins,
    settings: json.settings,
  };
}
