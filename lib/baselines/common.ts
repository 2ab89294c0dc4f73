/** Helpers the baselines share: labelled images, accuracy, cross-entropy, parameter distance, one training step. */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { predictLogitsAsync } from '../models/index.js';
import { ParameterView } from '../models/parameters.js';

/** Images in the model's input space (NHWC) with their labels. */
export interface LabelledImages {
  images: Float32Array;
  labels: ArrayLike<number>;
}

/** Per-example correctness of the model's argmax. */
export async function correctness(model: LayersModel, data: LabelledImages, signal?: AbortSignal): Promise<Uint8Array> {
  const logits = await predictLogitsAsync(model, data.images, { ...(signal ? { signal } : {}) });
  const n = data.labels.length;
  const classes = logits.length / Math.max(1, n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j]! > logits[i * classes + best]!) best = j;
    out[i] = best === data.labels[i] ? 1 : 0;
  }
  return out;
}

/** Accuracy of the model's argmax. */
export async function accuracy(model: LayersModel, data: LabelledImages, signal?: AbortSignal): Promise<number> {
  const c = await correctness(model, data, signal);
  let k = 0;
  for (const v of c) k += v;
  return c.length ? k / c.length : Number.NaN;
}

/** Mean softmax cross-entropy of the model on the data. */
export async function meanCrossEntropy(model: LayersModel, data: LabelledImages, signal?: AbortSignal): Promise<number> {
  const logits = await predictLogitsAsync(model, data.images, { ...(signal ? { signal } : {}) });
  const n = data.labels.length;
  const classes = logits.length / Math.max(1, n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let j = 0; j < classes; j++) max = Math.max(max, logits[i * classes + j]!);
    let z = 0;
    for (let j = 0; j < classes; j++) z += Math.exp(logits[i * classes + j]! - max);
    sum += max + Math.log(z) - logits[i * classes + (data.labels[i] as number)]!;
  }
  return n ? sum / n : Number.NaN;
}

/** A copy of every trainable parameter (to measure ‖w − w₀‖ later). */
export function snapshotWeights(model: LayersModel): Float64Array {
  return new ParameterView(model).read();
}

/** ‖w − w₀‖ over every trainable parameter, and relative to ‖w₀‖. */
export function weightDistance(model: LayersModel, w0: Float64Array): { distance: number; relativeDistance: number } {
  const w = new ParameterView(model).read();
  let d = 0;
  let n0 = 0;
  for (let i = 0; i < w.length; i++) {
    d += (w[i]! - w0[i]!) ** 2;
    n0 += w0[i]! ** 2;
  }
  return { distance: Math.sqrt(d), relativeDistance: n0 > 0 ? Math.sqrt(d / n0) : Number.NaN };
}

/** One optimiser step on a batch (input space); returns the batch's mean cross-entropy. */
export function trainStep(model: LayersModel, optimizer: tf.Optimizer, images: Float32Array, labels: Int32Array, shape: [number, number, number], numClasses: number): number {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return tf.tidy(() => {
    const x = tf.tensor4d(images, [labels.length, ...shape]);
    const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), numClasses);
    const cost = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(oneHot, model.apply(x, { training: false }) as tf.Tensor2D) as tf.Scalar, true, variables) as tf.Scalar;
    return cost.dataSync()[0]!;
  });
}

/** Copies examples `order[start..start+size)` into batch buffers. */
export function gatherBatch(data: LabelledImages, order: ArrayLike<number>, start: number, size: number, inputSize: number): { images: Float32Array; labels: Int32Array } {
  const images = new Float32Array(size * inputSize);
  const labels = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    const k = order[start + i]!;
    images.set(data.images.subarray(k * inputSize, (k + 1) * inputSize), i * inputSize);
    labels[i] = data.labels[k] as number;
  }
  return { images, labels };
}

/** Lets timers, I/O and abort signals run. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function checkPositive(value: unknown, name: string, integer = false): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${name} must be a number`);
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new RangeError(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  return value;
}
