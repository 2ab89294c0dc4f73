/**
 * Plain fine-tuning on X̃: Adam on the clean subset mixed with `advRepeat` copies of X̃ (so X̃
 * weighs in every epoch), one epoch at a time, until every example of X̃ is classified
 * correctly or `maxEpochs` have run.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { abortError } from '../errors.js';
import { Random } from '../data/random.js';
import { checkPositive, correctness, gatherBatch, trainStep, yieldToEventLoop, type LabelledImages } from './common.js';

export interface FinetuneOptions {
  /** Adam learning rate (default 1e-4). */
  learningRate?: number;
  /** Epoch cap (default 20). */
  maxEpochs?: number;
  /** Default 64. */
  batchSize?: number;
  /** Copies of X̃ in every epoch (default: enough that X̃ is about a tenth of the examples). */
  advRepeat?: number;
  /** Seed of the example order (default 0). */
  seed?: number;
  signal?: AbortSignal;
  onEpoch?: (info: { epoch: number; maxEpochs: number; loss: number; advCorrect: number; advCount: number }) => void;
}

export interface FinetuneResult {
  /** Epochs run. */
  epochs: number;
  /** Whether X̃ was classified correctly at the end. */
  reached: boolean;
  advCorrectBefore: number;
  advCorrectAfter: number;
  advRepeat: number;
  learningRate: number;
  maxEpochs: number;
  batchSize: number;
  /** Mean training loss per epoch. */
  losses: number[];
  timeMs: number;
}

/** Fine-tunes `model` in place (images in its input space). */
export async function finetune(model: LayersModel, adversarial: LabelledImages, clean: LabelledImages, options: FinetuneOptions = {}): Promise<FinetuneResult> {
  const started = Date.now();
  const learningRate = checkPositive(options.learningRate ?? 1e-4, 'learningRate');
  const maxEpochs = checkPositive(options.maxEpochs ?? 20, 'maxEpochs', true);
  const batchSize = checkPositive(options.batchSize ?? 64, 'batchSize', true);
  const nAdv = adversarial.labels.length;
  const nClean = clean.labels.length;
  if (nAdv === 0) throw new RangeError('finetune needs at least one adversarial example');
  const advRepeat = checkPositive(options.advRepeat ?? Math.max(1, Math.round(nClean / (9 * nAdv))), 'advRepeat', true);
  const shape = model.inputs[0]!.shape.slice(1) as [number, number, number];
  const inputSize = shape[0] * shape[1] * shape[2];
  const numClasses = model.outputs[0]!.shape[1] as number;
  // One pool: the clean images, then advRepeat copies of X̃ (by index).
  const images = new Float32Array((nClean + nAdv) * inputSize);
  images.set(clean.images.subarray(0, nClean * inputSize), 0);
  images.set(adversarial.images.subarray(0, nAdv * inputSize), nClean * inputSize);
  const labels = new Int32Array(nClean + nAdv);
  for (let i = 0; i < nClean; i++) labels[i] = clean.labels[i] as number;
  for (let i = 0; i < nAdv; i++) labels[nClean + i] = adversarial.labels[i] as number;
  const pool: LabelledImages = { images, labels };
  const order = new Uint32Array(nClean + advRepeat * nAdv);
  for (let i = 0; i < nClean; i++) order[i] = i;
  for (let r = 0; r < advRepeat; r++) for (let i = 0; i < nAdv; i++) order[nClean + r * nAdv + i] = nClean + i;
  const count = (c: Uint8Array) => c.reduce((s, v) => s + v, 0);
  const advCorrectBefore = count(await correctness(model, adversarial, options.signal));
  let advCorrect = advCorrectBefore;
  const random = new Random(options.seed ?? 0);
  const optimizer = tf.train.adam(learningRate);
  const losses: number[] = [];
  let epoch = 0;
  try {
    while (advCorrect < nAdv && epoch < maxEpochs) {
      random.shuffle(order);
      let sum = 0;
      for (let start = 0; start < order.length; start += batchSize) {
        if (options.signal?.aborted) throw abortError(options.signal);
        const size = Math.min(batchSize, order.length - start);
        const batch = gatherBatch(pool, order, start, size, inputSize);
        sum += trainStep(model, optimizer, batch.images, batch.labels, shape, numClasses) * size;
        await yieldToEventLoop();
      }
      epoch++;
      losses.push(sum / order.length);
      advCorrect = count(await correctness(model, adversarial, options.signal));
      options.onEpoch?.({ epoch, maxEpochs, loss: losses.at(-1)!, advCorrect, advCount: nAdv });
    }
  } finally {
    optimizer.dispose();
  }
  return { epochs: epoch, reached: advCorrect === nAdv, advCorrectBefore, advCorrectAfter: advCorrect, advRepeat, learningRate, maxEpochs, batchSize, losses, timeMs: Date.now() - started };
}
