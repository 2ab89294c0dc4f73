import * as tf from '@tensorflow/tfjs-core';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';
import { readCifar } from './cifar.js';
import { ensureCifar10, ensureFashionMnist, ensureMnist, type DataOptions } from './fetch.js';
import { readIdx } from './idx.js';
import type { DatasetName, ImageDataset, Normalization, Split } from './types.js';

export type { DatasetName, ImageDataset, Normalization, Split } from './types.js';

export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion-mnist', 'cifar10'];

/** The per-channel normalisation of the authors' CIFAR-10 ResNet8 (and of our CIFAR-10 training recipe). */
export const CIFAR10_NORMALIZATION: Readonly<Normalization> = Object.freeze({
  mean: [0.4914, 0.4822, 0.4465],
  std: [0.2023, 0.1994, 0.201],
});

/** Class names, index = label. */
export const CLASS_NAMES: Record<DatasetName, readonly string[]> = {
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  cifar10: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
};

/** Checks that `ds` is a consistent ImageDataset; throws TypeError/RangeError naming the fault. */
export function checkDataset(ds: ImageDataset, argName = 'dataset'): void {
  if (typeof ds !== 'object' || ds === null) throw new TypeError(`${argName} must be an ImageDataset`);
  if (!(ds.images instanceof Float32Array)) throw new TypeError(`${argName}.images must be a Float32Array`);
  if (!(ds.labels instanceof Uint8Array)) throw new TypeError(`${argName}.labels must be a Uint8Array`);
  for (const key of ['count', 'height', 'width', 'channels', 'numClasses'] as const) {
    if (!Number.isInteger(ds[key]) || ds[key] < 0) throw new TypeError(`${argName}.${key} must be a non-negative integer`);
  }
  if (ds.labels.length !== ds.count) throw new RangeError(`${argName} has ${ds.labels.length} labels for count ${ds.count}`);
  if (ds.images.length !== ds.count * ds.height * ds.width * ds.channels) {
    throw new RangeError(`${argName}.images has ${ds.images.length} values, expected count·height·width·channels = ${ds.count * ds.height * ds.width * ds.channels}`);
  }
}

/**
 * Builds a data set from an IDX image file ([N,H,W] or [N,H,W,C]; uint8 scaled by 1/255, float types
 * taken as they are) and an IDX label file ([N], integer type). Gzipped files are accepted.
 */
export async function loadIdxDataset(
  imagesFile: string,
  labelsFile: string,
  options: { name?: string; numClasses?: number } = {},
): Promise<ImageDataset> {
  if (typeof imagesFile !== 'string' || typeof labelsFile !== 'string') throw new TypeError('imagesFile and labelsFile must be paths');
  const [imageArray, labelArray] = await Promise.all([readIdx(imagesFile), readIdx(labelsFile)]);
  if (imageArray.dims.length !== 3 && imageArray.dims.length !== 4) {
    throw new AdvcorrectError('ERR_DATA', `${imagesFile}: image files have 3 or 4 dimensions (N,H,W[,C]), this one has [${imageArray.dims.join(', ')}]`);
  }
  if (labelArray.dims.length !== 1) {
    throw new AdvcorrectError('ERR_DATA', `${labelsFile}: label files have 1 dimension, this one has [${labelArray.dims.join(', ')}]`);
  }
  if (labelArray.dtype === 'float32' || labelArray.dtype === 'float64') {
    throw new AdvcorrectError('ERR_DATA', `${labelsFile}: labels must be integers, the file holds ${labelArray.dtype}`);
  }
  const [count, height, width, channels = 1] = imageArray.dims;
  if (labelArray.dims[0] !== count) {
    throw new AdvcorrectError('ERR_DATA', `image/label count mismatch: ${imagesFile} has ${count} images, ${labelsFile} has ${labelArray.dims[0]} labels`);
  }
  const images = new Float32Array(imageArray.data.length);
  if (imageArray.dtype === 'uint8') {
    const src = imageArray.data;
    // In slices with yields in between: the MNIST training images are 47 M values.
    for (let start = 0; start < src.length; start += 1 << 22) {
      const end = Math.min(src.length, start + (1 << 22));
      for (let i = start; i < end; i++) images[i] = src[i] / 255;
      if (end < src.length) await new Promise((resolve) => setImmediate(resolve));
    }
  } else {
    images.set(imageArray.data);
  }
  const labels = new Uint8Array(count);
  let maxLabel = 0;
  for (let i = 0; i < count; i++) {
    const label = labelArray.data[i];
    if (label < 0 || label > 255) throw new AdvcorrectError('ERR_DATA', `${labelsFile}: label ${i} is ${label}, outside 0..255`);
    labels[i] = label;
    if (label > maxLabel) maxLabel = label;
  }
  const numClasses = options.numClasses ?? Math.max(10, maxLabel + 1);
  if (maxLabel >= numClasses) throw new AdvcorrectError('ERR_DATA', `${labelsFile}: label ${maxLabel} is not below numClasses ${numClasses}`);
  return { name: options.name ?? imagesFile, images, labels, count, height, width, channels, numClasses };
}

/**
 * Loads one of the built-in data sets, fetching it into the cache dir first if needed (CIFAR-10 and
 * Fashion-MNIST) and verifying checksums once.
 */
export async function loadDataset(name: DatasetName, split: Split, options: DataOptions = {}): Promise<ImageDataset> {
  if (!DATASET_NAMES.includes(name)) throw new TypeError(`name must be one of ${DATASET_NAMES.join(', ')}`);
  if (split !== 'train' && split !== 'test') throw new TypeError("split must be 'train' or 'test'");
  if (name === 'cifar10') {
    const files = await ensureCifar10(options);
    const ds = await readCifar(split === 'train' ? files.train : [files.test], name);
    return ds;
  }
  const files = name === 'mnist' ? await ensureMnist(options) : await ensureFashionMnist(options);
  const prefix = split === 'train' ? 'train' : 't10k';
  return loadIdxDataset(files[`${prefix}-images-idx3-ubyte`], files[`${prefix}-labels-idx1-ubyte`], { name, numClasses: 10 });
}

/**
 * Loads a data set named on a command line: a built-in name (`mnist`, `fashion-mnist`, `cifar10`), a
 * directory holding IDX files (`train-`/`t10k-images-idx3-ubyte` and `-labels-idx1-ubyte`, gzipped or
 * not, chosen by `split`) or CIFAR-10 binary batches (`data_batch_1..5.bin` for train, `test_batch.bin`
 * for test), a single CIFAR `.bin` file, or `IMAGES,LABELS` (two IDX files).
 */
export async function loadDatasetFrom(spec: string, split: Split, options: DataOptions = {}): Promise<ImageDataset> {
  if (typeof spec !== 'string' || spec === '') throw new TypeError('dataset must be a non-empty string');
  if (split !== 'train' && split !== 'test') throw new TypeError("split must be 'train' or 'test'");
  if ((DATASET_NAMES as readonly string[]).includes(spec)) return loadDataset(spec as DatasetName, split, options);
  if (spec.includes(',')) {
    const parts = spec.split(',');
    if (parts.length !== 2) throw new TypeError('a dataset given as files must be IMAGES,LABELS (two IDX files)');
    return loadIdxDataset(parts[0], parts[1], { name: path.basename(parts[0]) });
  }
  if (!existsSync(spec)) {
    throw new AdvcorrectError('ERR_IO', `dataset '${spec}' is neither ${DATASET_NAMES.join(', ')} nor an existing file or directory`);
  }
  if (statSync(spec).isDirectory()) {
    const prefix = split === 'train' ? 'train' : 't10k';
    const find = (name: string): string | undefined =>
      [name, `${name}.gz`].map((f) => path.join(spec, f)).find((f) => existsSync(f));
    const images = find(`${prefix}-images-idx3-ubyte`);
    const labels = find(`${prefix}-labels-idx1-ubyte`);
    if (images && labels) return loadIdxDataset(images, labels, { name: path.basename(path.resolve(spec)) });
    const batches = split === 'train' ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ['test_batch.bin'];
    const files = batches.map((f) => path.join(spec, f));
    if (files.every((f) => existsSync(f))) return readCifar(files, path.basename(path.resolve(spec)));
    throw new AdvcorrectError(
      'ERR_DATA',
      `${spec}: no ${split} data found (looked for ${prefix}-images-idx3-ubyte[.gz] + ${prefix}-labels-idx1-ubyte[.gz], ` +
        `or ${batches.join(', ')})`,
    );
  }
  if (spec.endsWith('.bin')) return readCifar([spec], path.basename(spec));
  throw new AdvcorrectError('ERR_DATA', `${spec}: a single file must be a CIFAR-10 binary batch (.bin); give IDX files as IMAGES,LABELS`);
}

function checkNormalization(normalization: Normalization, channels: number): void {
  if (!normalization || !Array.isArray(normalization.mean) || !Array.isArray(normalization.std)) {
    throw new TypeError('normalization must be { mean: number[], std: number[] }');
  }
  if (normalization.mean.length !== channels || normalization.std.length !== channels) {
    throw new RangeError(`normalization needs ${channels} mean and std values (one per channel)`);
  }
  if (normalization.std.some((s) => !(s > 0) || !Number.isFinite(s))) throw new RangeError('normalization.std values must be positive');
  if (normalization.mean.some((m) => !Number.isFinite(m))) throw new RangeError('normalization.mean values must be finite');
}

function checkNormalizeArguments(images: Float32Array, normalization: Normalization, channels: number): void {
  if (!(images instanceof Float32Array)) throw new TypeError('images must be a Float32Array');
  if (!Number.isInteger(channels) || channels <= 0) throw new RangeError('channels must be a positive integer');
  if (images.length % channels !== 0) throw new RangeError('images.length must be a multiple of channels');
  checkNormalization(normalization, channels);
}

/** Returns (x − mean[c]) / std[c] for NHWC images with `channels` channels (a new array). */
export function normalize(images: Float32Array, normalization: Normalization, channels: number): Float32Array {
  checkNormalizeArguments(images, normalization, channels);
  const out = new Float32Array(images.length);
  const { mean, std } = normalization;
  const inv = std.map((s) => 1 / s);
  for (let i = 0; i < images.length; i += channels) {
    for (let c = 0; c < channels; c++) out[i + c] = (images[i + c] - mean[c]) * inv[c];
  }
  return out;
}

/** Inverse of {@link normalize}: x = x'·std[c] + mean[c]. */
export function denormalize(images: Float32Array, normalization: Normalization, channels: number): Float32Array {
  checkNormalizeArguments(images, normalization, channels);
  const out = new Float32Array(images.length);
  const { mean, std } = normalization;
  for (let i = 0; i < images.length; i += channels) {
    for (let c = 0; c < channels; c++) out[i + c] = images[i + c] * std[c] + mean[c];
  }
  return out;
}

/**
 * The data set as tensors: `xs` [N,H,W,C] float32 (normalised if `normalization` is given) and
 * `ys` [N] int32 labels. The caller disposes them.
 */
export function toTensors(ds: ImageDataset, normalization?: Normalization): { xs: tf.Tensor4D; ys: tf.Tensor1D } {
  checkDataset(ds);
  const values = normalization ? normalize(ds.images, normalization, ds.channels) : ds.images;
  const xs = tf.tensor4d(values, [ds.count, ds.height, ds.width, ds.channels], 'float32');
  const ys = tf.tensor1d(Int32Array.from(ds.labels), 'int32');
  return { xs, ys };
}
