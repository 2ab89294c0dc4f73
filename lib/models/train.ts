/**
 * Training with the paper's authors' recipes, seeded:
 *   mnist    Adam (lr 1e-3, β 0.9/0.999, ε 1e-8) with StepLR(γ 0.7) per epoch, batch 64
 *   cifar10  SGD (lr 0.01, momentum 0.9), batch 64, random crop 32 with 4-pixel reflect padding,
 *            random horizontal flip, per-channel normalisation (CIFAR10_NORMALIZATION)
 * Cross-entropy loss; the order of examples and the augmentation are drawn from one seeded
 * stream, so a run is repeatable on the same backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { activeBackend, type BackendName, initBackend } from '../backend/index.js';
import { CIFAR10_NORMALIZATION, checkDataset, type ImageDataset, type Normalization } from '../data/datasets.js';
import { Random } from '../data/random.js';
import { AdvcorrectError, abortError } from '../errors.js';
import { firstNonFinite } from './npz.js';

export type TrainRecipe = 'mnist' | 'cifar10';
export const TRAIN_RECIPES: readonly TrainRecipe[] = ['mnist', 'cifar10'];

export interface TrainProgress {
  /** 0-based epoch and batch within it. */
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** Examples seen so far over all epochs. */
  examples: number;
  totalExamples: number;
  /** Running mean loss and accuracy of this epoch so far. */
  loss: number;
  accuracy: number;
  learningRate: number;
}

export interface EpochStats {
  epoch: number;
  /** Mean training loss and accuracy over the epoch (measured on the fly, augmented data). */
  loss: number;
  accuracy: number;
  learningRate: number;
  seconds: number;
  validation?: { loss: number; accuracy: number };
}

export interface TrainOptions {
  /** Default: 'cifar10' for 3-channel data, else 'mnist'. */
  recipe?: TrainRecipe;
  /** Default 10. */
  epochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Overrides the recipe's initial learning rate. */
  learningRate?: number;
  /** Seed of the example order and augmentation. Default 0. */
  seed?: number;
  /** Input normalisation applied to every batch; default: the recipe's (CIFAR-10: per channel; MNIST: none). */
  normalization?: Normalization | null;
  /** Evaluated (inference mode) after every epoch. */
  validation?: ImageDataset;
  signal?: AbortSignal;
  onProgress?: (progress: TrainProgress) => void;
}

export interface TrainResult {
  backend: BackendName;
  recipe: TrainRecipe;
  epochs: EpochStats[];
  seconds: number;
  examplesPerSecond: number;
}

interface Recipe {
  learningRate: number;
  makeOptimizer(lr: number): tf.Optimizer;
  setLearningRate(optimizer: tf.Optimizer, lr: number): void;
  /** Learning rate of epoch e (0-based) from the initial one. */
  schedule(lr0: number, epoch: number): number;
  augment: boolean;
  normalization?: Normalization;
}

const RECIPES: Record<TrainRecipe, Recipe> = {
  mnist: {
    learningRate: 1e-3,
    makeOptimizer: (lr) => tf.train.adam(lr, 0.9, 0.999, 1e-8),
    // AdamOptimizer reads its learningRate field on every step.
    setLearningRate: (opt, lr) => {
      (opt as unknown as { learningRate: number }).learningRate = lr;
    },
    schedule: (lr0, epoch) => lr0 * 0.7 ** epoch,
    augment: false,
  },
  cifar10: {
    learningRate: 0.01,
    makeOptimizer: (lr) => tf.train.momentum(lr, 0.9),
    setLearningRate: (opt, lr) => (opt as tf.MomentumOptimizer).setLearningRate(lr),
    schedule: (lr0) => lr0,
    augment: true,
    normalization: CIFAR10_NORMALIZATION,
  },
};

function checkPositiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/**
 * Trains `model` (in place) on `data` and returns per-epoch loss and accuracy. The model's
 * output must be logits over `data.numClasses` classes and its input NHWC of the data's shape.
 */
export async function trainModel(model: tfl.LayersModel, data: ImageDataset, options: TrainOptions = {}): Promise<TrainResult> {
  if (!(model instanceof tfl.LayersModel)) throw new TypeError('model must be a tfjs LayersModel');
  checkDataset(data, 'data');
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const recipeName = options.recipe ?? (data.channels === 3 ? 'cifar10' : 'mnist');
  if (!TRAIN_RECIPES.includes(recipeName)) throw new RangeError(`recipe must be one of ${TRAIN_RECIPES.join(', ')}, got '${String(recipeName)}'`);
  const recipe = RECIPES[recipeName];
  const epochs = checkPositiveInteger(options.epochs ?? 10, 'epochs');
  const batchSize = checkPositiveInteger(options.batchSize ?? 64, 'batchSize');
  const lr0 = options.learningRate ?? recipe.learningRate;
  if (typeof lr0 !== 'number' || !(lr0 > 0) || !Number.isFinite(lr0)) throw new RangeError(`learningRate must be a positive number, got ${lr0}`);
  const seed = options.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new TypeError('seed must be a finite number');
  if (data.count === 0) throw new RangeError('data has no examples');
  const inputShape = model.inputs[0].shape.slice(1);
  const want = [data.height, data.width, data.channels];
  if (inputShape.length !== 3 || inputShape.some((d, i) => d !== null && d !== want[i])) {
    throw new RangeError(`model input shape [${inputShape.join(', ')}] does not match the data's [${want.join(', ')}]`);
  }
  const outputShape = model.outputs[0].shape;
  if (outputShape[outputShape.length - 1] !== data.numClasses) {
    throw new RangeError(`model has ${String(outputShape[outputShape.length - 1])} outputs, the data ${data.numClasses} classes`);
  }
  if (options.validation !== undefined) checkDataset(options.validation, 'validation');
  const normalization = options.normalization === null ? undefined : (options.normalization ?? recipe.normalization);
  if (normalization && (normalization.mean.length !== data.channels || normalization.std.length !== data.channels)) {
    throw new RangeError(`normalization needs ${data.channels} mean and std values`);
  }
  const { signal, onProgress } = options;
  if (signal?.aborted) throw abortError(signal);

  const backend = await initBackend(activeBackendOrDefault());
  const random = new Random(seed);
  const optimizer = recipe.makeOptimizer(lr0);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { height: H, width: W, channels: C, count: N, numClasses } = data;
  const imageSize = H * W * C;
  const batches = Math.ceil(N / batchSize);
  const order = new Uint32Array(N);
  for (let i = 0; i < N; i++) order[i] = i;
  const xBuffer = new Float32Array(batchSize * imageSize);
  const yBuffer = new Int32Array(batchSize);
  const stats: EpochStats[] = [];
  const started = performance.now();
  let examplesSeen = 0;

  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const epochStart = performance.now();
      const lr = recipe.schedule(lr0, epoch);
      recipe.setLearningRate(optimizer, lr);
      random.shuffle(order);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (let b = 0; b < batches; b++) {
        if (signal?.aborted) throw abortError(signal);
        const start = b * batchSize;
        const size = Math.min(batchSize, N - start);
        for (let i = 0; i < size; i++) {
          const index = order[start + i];
          const dst = xBuffer.subarray(i * imageSize, (i + 1) * imageSize);
          const src = data.images.subarray(index * imageSize, (index + 1) * imageSize);
          if (recipe.augment) cropFlip(src, dst, H, W, C, 4, random);
          else dst.set(src);
          if (normalization) normalizeInPlace(dst, normalization, C);
          yBuffer[i] = data.labels[index];
        }
        const [batchLoss, batchCorrect] = tf.tidy(() => {
          const x = tf.tensor4d(xBuffer.subarray(0, size * imageSize), [size, H, W, C]);
          const labels = tf.tensor1d(yBuffer.subarray(0, size), 'int32');
          const oneHot = tf.oneHot(labels, numClasses);
          let hits: tf.Scalar | undefined;
          const cost = optimizer.minimize(
            () => {
              const logits = model.apply(x, { training: true }) as tf.Tensor2D;
              hits = tf.keep(tf.sum<tf.Tensor>(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32')) as tf.Scalar);
              return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
            },
            true,
            variables,
          ) as tf.Scalar;
          const out = [cost.dataSync()[0], hits!.dataSync()[0]];
          hits!.dispose();
          return out;
        });
        if (!Number.isFinite(batchLoss)) {
          throw new AdvcorrectError(
            'ERR_NON_FINITE',
            `training diverged in epoch ${epoch + 1}, batch ${b + 1}: the loss is ${batchLoss} (learning rate ${lr} too large?); nothing was kept`,
          );
        }
        lossSum += batchLoss * size;
        correct += batchCorrect;
        seen += size;
        examplesSeen += size;
        onProgress?.({
          epoch,
          epochs,
          batch: b,
          batches,
          examples: examplesSeen,
          totalExamples: epochs * N,
          loss: lossSum / seen,
          accuracy: correct / seen,
          learningRate: lr,
        });
        // Let timers, I/O and abort signals run between batches.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const epochStats: EpochStats = {
        epoch,
        loss: lossSum / seen,
        accuracy: correct / seen,
        learningRate: lr,
        seconds: (performance.now() - epochStart) / 1000,
      };
      checkTrainedWeights(model, epoch, lr);
      if (options.validation) {
        epochStats.validation = await evaluateModel(model, options.validation, { normalization, signal });
      }
      stats.push(epochStats);
    }
  } finally {
    optimizer.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  return { backend, recipe: recipeName, epochs: stats, seconds, examplesPerSecond: examplesSeen / seconds };
}

/** Stops training whose weights left the finite numbers (the loss may still read finite on that batch). */
function checkTrainedWeights(model: tfl.LayersModel, epoch: number, lr: number): void {
  for (const weight of model.weights) {
    const values = weight.read().dataSync() as Float32Array;
    const at = firstNonFinite(values);
    if (at >= 0) {
      throw new AdvcorrectError(
        'ERR_NON_FINITE',
        `training diverged in epoch ${epoch + 1}: weight ${weight.originalName} holds ${values[at]} at flat index ${at} (learning rate ${lr} too large?); nothing was kept`,
      );
    }
  }
}

/** Mean cross-entropy and accuracy of `model` on `data` in inference mode, in batches. */
export async function evaluateModel(
  model: tfl.LayersModel,
  data: ImageDataset,
  options: { normalization?: Normalization; batchSize?: number; signal?: AbortSignal } = {},
): Promise<{ loss: number; accuracy: number }> {
  checkDataset(data, 'data');
  const batchSize = checkPositiveInteger(options.batchSize ?? 500, 'batchSize');
  await initBackend(activeBackendOrDefault());
  const { height: H, width: W, channels: C, count: N, numClasses } = data;
  const imageSize = H * W * C;
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < N; start += batchSize) {
    if (options.signal?.aborted) throw abortError(options.signal);
    const size = Math.min(batchSize, N - start);
    let images = data.images.subarray(start * imageSize, (start + size) * imageSize);
    if (options.normalization) images = normalizeInPlace(Float32Array.from(images), options.normalization, C);
    const [l, c] = tf.tidy(() => {
      const x = tf.tensor4d(images, [size, H, W, C]);
      const labels = tf.tensor1d(Int32Array.from(data.labels.subarray(start, start + size)), 'int32');
      const logits = model.predict(x) as tf.Tensor2D;
      const loss = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, numClasses), logits);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32'));
      return [loss.dataSync()[0], hits.dataSync()[0]];
    });
    lossSum += l * size;
    correct += c;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { loss: N > 0 ? lossSum / N : NaN, accuracy: N > 0 ? correct / N : NaN };
}

function activeBackendOrDefault() {
  try {
    return activeBackend();
  } catch {
    return undefined;
  }
}

function normalizeInPlace(x: Float32Array, normalization: Normalization, channels: number): Float32Array {
  const { mean, std } = normalization;
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) x[i + c] = (x[i + c] - mean[c]) / std[c];
  }
  return x;
}

/** Reflect index into [0, n) as numpy/PyTorch 'reflect' padding does (edge not repeated). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/**
 * A random crop of the image padded by `pad` pixels on each side (reflect), of the original
 * size, then a horizontal flip with probability 1/2 — torchvision's RandomCrop(padding, reflect)
 * + RandomHorizontalFlip.
 */
export function cropFlip(
  src: Float32Array,
  dst: Float32Array,
  H: number,
  W: number,
  C: number,
  pad: number,
  random: Random,
): void {
  const dy = random.nextInt(2 * pad + 1) - pad;
  const dx = random.nextInt(2 * pad + 1) - pad;
  const flip = random.next() < 0.5;
  for (let r = 0; r < H; r++) {
    const sr = reflect(r + dy, H);
    for (let c = 0; c < W; c++) {
      const sc = reflect((flip ? W - 1 - c : c) + dx, W);
      const s = (sr * W + sc) * C;
      const d = (r * W + c) * C;
      for (let k = 0; k < C; k++) dst[d + k] = src[s + k];
    }
  }
}
