/**
 * Inference helpers that work on any single-input classifier (model.predict, no supported-layer
 * requirement): logits batch by batch, and the per-example margin f_y − max_{j≠y} f_j.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { compileInputs } from './graph.js';
import { batchTensor, checkAbort, checkBatchSize, checkExamples, yieldToEventLoop } from './batches.js';

/** Logits of every image (row-major [n, classes]), computed batch by batch with model.predict. */
export function predictLogits(model: LayersModel, images: Float32Array, options: { batchSize?: number } = {}): Float32Array {
  const batchSize = checkBatchSize(options.batchSize ?? 256);
  const graph = compileInputs(model);
  const n = checkExamples(graph, images, undefined, false);
  const out = new Float32Array(n * graph.numClasses);
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const logits = tf.tidy(() => model.predict(batchTensor(graph, images, start, end)) as tf.Tensor);
    out.set(logits.dataSync(), start * graph.numClasses);
    logits.dispose();
  }
  return out;
}

/** {@link predictLogits} that yields to the event loop between batches and honours an abort signal. */
export async function predictLogitsAsync(
  model: LayersModel,
  images: Float32Array,
  options: { batchSize?: number; signal?: AbortSignal } = {},
): Promise<Float32Array> {
  const batchSize = checkBatchSize(options.batchSize ?? 256);
  const shape = compileInputs(model);
  const n = checkExamples(shape, images, undefined, false);
  const out = new Float32Array(n * shape.numClasses);
  for (let start = 0; start < n; start += batchSize) {
    checkAbort(options.signal);
    const end = Math.min(n, start + batchSize);
    out.set(predictLogits(model, images.subarray(start * shape.inputSize, end * shape.inputSize), { batchSize }), start * shape.numClasses);
    if (end < n) await yieldToEventLoop();
  }
  return out;
}

/** Per-example margin f_y − max_{j≠y} f_j from row-major logits (negative = misclassified). */
export function marginsFromLogits(logits: Float32Array, labels: ArrayLike<number>, numClasses: number): Float64Array {
  const n = labels.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    let best = -Infinity;
    for (let j = 0; j < numClasses; j++) if (j !== y && logits[i * numClasses + j] > best) best = logits[i * numClasses + j];
    out[i] = logits[i * numClasses + y] - best;
  }
  return out;
}

/** Per-example margin f_y − max_{j≠y} f_j (negative = misclassified). */
export function margins(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: { batchSize?: number } = {}): Float64Array {
  const shape = compileInputs(model);
  checkExamples(shape, images, labels, true);
  return marginsFromLogits(predictLogits(model, images, options), labels, shape.numClasses);
}
