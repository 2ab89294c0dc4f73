/**
 * The clean training loss: mean cross-entropy over a data set (cleanLoss, from logits), and its
 * gradient with respect to a parameter view (cleanLossGradient, through the compiled graph).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ParameterView } from './parameters.js';
import { compileInputs, compileModel } from './graph.js';
import { forwardGraph, type WeightOverrides } from './forward.js';
import { batchTensor, checkAbort, checkBatchSize, checkExamples, checkView, yieldToEventLoop, type BatchOptions } from './batches.js';
import { predictLogits } from './inference.js';
import { viewSteps } from './example-gradients.js';

/** Mean cross-entropy of softmax(logits) against the labels, in float64. */
export function crossEntropyFromLogits(logits: Float32Array, labels: ArrayLike<number>, numClasses: number): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const off = i * numClasses;
    let max = -Infinity;
    for (let j = 0; j < numClasses; j++) if (logits[off + j] > max) max = logits[off + j];
    let s = 0;
    for (let j = 0; j < numClasses; j++) s += Math.exp(logits[off + j] - max);
    sum += max + Math.log(s) - logits[off + labels[i]];
  }
  return labels.length > 0 ? sum / labels.length : 0;
}

/** Mean clean cross-entropy loss over the images (batched, yields to the event loop between batches). */
export async function cleanLoss(model: LayersModel, images: Float32Array, labels: ArrayLike<number>, options: BatchOptions = {}): Promise<number> {
  const batchSize = checkBatchSize(options.batchSize ?? 256);
  const shape = compileInputs(model);
  const n = checkExamples(shape, images, labels, true);
  if (n === 0) throw new RangeError('cleanLoss needs at least one example');
  let sum = 0;
  for (let start = 0; start < n; start += batchSize) {
    checkAbort(options.signal);
    const end = Math.min(n, start + batchSize);
    const logits = predictLogits(model, images.subarray(start * shape.inputSize, end * shape.inputSize), { batchSize });
    sum += crossEntropyFromLogits(logits, Array.prototype.slice.call(labels, start, end) as number[], shape.numClasses) * (end - start);
    options.onProgress?.(end, n);
    if (end < n) await yieldToEventLoop();
  }
  return sum / n;
}

/** Mean clean cross-entropy and its gradient with respect to the view's parameters (view order). */
export async function cleanLossGradient(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: BatchOptions = {},
): Promise<{ loss: number; gradient: Float64Array }> {
  checkView(model, view);
  const batchSize = checkBatchSize(options.batchSize ?? 256);
  const graph = compileModel(model);
  const n = checkExamples(graph, images, labels, true);
  if (n === 0) throw new RangeError('cleanLossGradient needs at least one example');
  viewSteps(graph, view);
  const weightTensors = view.entries.map((e) => graph.steps.find((s) => s.layer === e.layer)!.weights.get(e.name)!.read());
  const gradient = new Float64Array(view.size);
  let lossSum = 0;
  for (let start = 0; start < n; start += batchSize) {
    checkAbort(options.signal);
    const end = Math.min(n, start + batchSize);
    const bsz = end - start;
    const onehot = new Float32Array(bsz * graph.numClasses);
    for (let b = 0; b < bsz; b++) onehot[b * graph.numClasses + labels[start + b]] = 1;
    const { value, grads } = tf.tidy(() => {
      const x = batchTensor(graph, images, start, end);
      const target = tf.tensor2d(onehot, [bsz, graph.numClasses]);
      const f = (...ws: tf.Tensor[]): tf.Scalar => {
        const overrides: WeightOverrides = new Map();
        view.entries.forEach((e, k) => overrides.set(`${e.layer}/${e.name}`, ws[k]));
        const logits = forwardGraph(graph, x, overrides)[graph.outputSlot];
        return tf.sub(tf.sum(tf.logSumExp(logits, 1)), tf.sum(tf.mul(logits, target))) as tf.Scalar;
      };
      return tf.valueAndGrads(f)(weightTensors);
    });
    lossSum += (value.dataSync() as Float32Array)[0];
    value.dispose();
    view.entries.forEach((e, k) => {
      const g = grads[k].dataSync();
      for (let i = 0; i < e.size; i++) gradient[e.offset + i] += g[i];
      grads[k].dispose();
    });
    options.onProgress?.(end, n);
    if (end < n) await yieldToEventLoop();
  }
  for (let i = 0; i < gradient.length; i++) gradient[i] /= n;
  return { loss: lossSum / n, gradient };
}
