import { checkDataset, type ImageDataset } from './datasets.js';
import { Random, shuffleIndices } from './random.js';

export { shuffleIndices };

/** A new data set holding the examples at `indices`, in that order (copied). */
export function subset(ds: ImageDataset, indices: ArrayLike<number>, name = ds.name): ImageDataset {
  checkDataset(ds);
  if (indices === null || typeof indices !== 'object' || typeof indices.length !== 'number') throw new TypeError('indices must be an array of integers');
  const size = ds.height * ds.width * ds.channels;
  const images = new Float32Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) throw new RangeError(`index ${i} is outside 0..${ds.count - 1}`);
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
  }
  return { ...ds, name, images, labels, count: indices.length };
}

/** The first `n` examples (views on the same arrays; n is clamped to the count). */
export function takeFirst(ds: ImageDataset, n: number): ImageDataset {
  checkDataset(ds);
  if (!Number.isInteger(n) || n < 0) throw new RangeError('n must be a non-negative integer');
  const count = Math.min(n, ds.count);
  const size = ds.height * ds.width * ds.channels;
  return { ...ds, images: ds.images.subarray(0, count * size), labels: ds.labels.subarray(0, count), count };
}

/** Number of examples of each class. */
export function classCounts(ds: ImageDataset): number[] {
  checkDataset(ds);
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (let i = 0; i < ds.count; i++) counts[ds.labels[i]]++;
  return counts;
}

/**
 * Indices of `perClass` examples of every class, drawn without replacement by a seeded shuffle, in
 * class-interleaved order (class 0, 1, …, 9, 0, 1, …). Throws RangeError if a class has too few.
 */
export function balancedIndices(ds: ImageDataset, perClass: number, seed: number): Uint32Array {
  checkDataset(ds);
  if (!Number.isInteger(perClass) || perClass < 0) throw new RangeError('perClass must be a non-negative integer');
  if (!Number.isFinite(seed)) throw new TypeError('seed must be a finite number');
  const order = shuffleIndices(ds.count, seed);
  const byClass: number[][] = Array.from({ length: ds.numClasses }, () => []);
  for (const i of order) {
    const list = byClass[ds.labels[i]];
    if (list.length < perClass) list.push(i);
  }
  byClass.forEach((list, c) => {
    if (list.length < perClass) throw new RangeError(`class ${c} has only ${list.length} examples, ${perClass} requested`);
  });
  const out = new Uint32Array(perClass * ds.numClasses);
  let k = 0;
  for (let j = 0; j < perClass; j++) for (let c = 0; c < ds.numClasses; c++) out[k++] = byClass[c][j];
  return out;
}

/** `perClass` examples of every class (see {@link balancedIndices}). */
export function sampleBalanced(ds: ImageDataset, perClass: number, seed: number): ImageDataset {
  return subset(ds, balancedIndices(ds, perClass, seed));
}

/** The data set in a seeded random order (copied). */
export function shuffleDataset(ds: ImageDataset, seed: number): ImageDataset {
  checkDataset(ds);
  return subset(ds, shuffleIndices(ds.count, seed));
}

/** Splits into the first `n` and the rest (both copied), e.g. a training and a validation part. */
export function splitAt(ds: ImageDataset, n: number): [ImageDataset, ImageDataset] {
  checkDataset(ds);
  if (!Number.isInteger(n) || n < 0 || n > ds.count) throw new RangeError(`n must be an integer in [0, ${ds.count}]`);
  const all = Array.from({ length: ds.count }, (_, i) => i);
  return [subset(ds, all.slice(0, n)), subset(ds, all.slice(n))];
}

export { Random };
