/**
 * What the batched functions of the models layer share: their common options, argument checks
 * (batch size, images and labels against the model, the parameter view), the batch tensor, and
 * abort/yield between batches.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { abortError } from '../errors.js';
import type { ModelGraph } from './graph.js';
import { ParameterView } from './parameters.js';

/** Common options of the batched functions of the models layer. */
export interface BatchOptions {
  /** Examples per forward/backward pass (default 64). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Called after each batch with examples done and total. */
  onProgress?: (done: number, total: number) => void;
}

const DEFAULT_BATCH = 64;

export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function checkBatchSize(batchSize: unknown): number {
  if (batchSize === undefined) return DEFAULT_BATCH;
  if (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize <= 0) {
    throw new RangeError('batchSize must be a positive integer');
  }
  return batchSize;
}

/** Validates images/labels against the model; returns the example count. */
export function checkExamples(graph: Pick<ModelGraph, 'inputShape' | 'inputSize' | 'numClasses'>, images: unknown, labels: unknown, requireLabels: boolean): number {
  if (!(images instanceof Float32Array)) throw new TypeError('images must be a Float32Array');
  if (images.length % graph.inputSize !== 0) {
    throw new RangeError(`images has length ${images.length}, not a multiple of the model's input size ${graph.inputSize} (${graph.inputShape.join('×')})`);
  }
  const n = images.length / graph.inputSize;
  if (requireLabels) {
    if (labels === null || typeof labels !== 'object' || typeof (labels as ArrayLike<number>).length !== 'number') {
      throw new TypeError('labels must be an array-like of class indices');
    }
    const l = labels as ArrayLike<number>;
    if (l.length !== n) throw new RangeError(`labels has length ${l.length}, expected ${n} (one per image)`);
    for (let i = 0; i < n; i++) {
      const y = l[i];
      if (!Number.isInteger(y) || y < 0 || y >= graph.numClasses) {
        throw new RangeError(`labels[${i}] = ${y} is not a class index in [0, ${graph.numClasses})`);
      }
    }
  }
  return n;
}

export function batchTensor(graph: Pick<ModelGraph, 'inputShape' | 'inputSize'>, images: Float32Array, start: number, end: number): tf.Tensor {
  return tf.tensor(images.subarray(start * graph.inputSize, end * graph.inputSize), [end - start, ...graph.inputShape], 'float32');
}

export function checkView(model: LayersModel, view: unknown): ParameterView {
  if (!(view instanceof ParameterView)) throw new TypeError('view must be a ParameterView');
  if (view.model !== model) throw new RangeError('view was made for another model');
  return view;
}
