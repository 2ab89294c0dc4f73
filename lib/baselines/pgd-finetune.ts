/**
 * PGD adversarial fine-tuning (Madry et al.): every batch of training images is replaced by its
 * PGD adversarial examples against the current weights, and Adam takes one step on their
 * cross-entropy. Epochs over the given images repeat until the wall-time budget is spent: a
 * batch starts only if the slowest batch so far would still finish within the budget (the first
 * batch always runs). The adversarial loss (mean cross-entropy under the same PGD with a fixed
 * seed) on a probe set is measured before and after, outside the budget.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { abortError } from '../errors.js';
import type { Normalization } from '../data/datasets.js';
import { Random } from '../data/random.js';
import { pgd } from '../attacks/attacks.js';
import { checkPositive, gatherBatch, meanCrossEntropy, trainStep, yieldToEventLoop, type LabelledImages } from './common.js';

export interface PgdFinetuneOptions {
  /** Wall-time budget of the training in milliseconds. */
  budgetMs: number;
  /** The PGD attack (pixel units, like the rest of advcorrect). */
  attack: { eps: number; steps: number; stepSize: number; randomStart: boolean };
  clip: boolean;
  /** Input normalisation of the model, if any (images are in its input space). */
  normalization?: Normalization;
  /** Adam learning rate (default 1e-4). */
  learningRate?: number;
  /** Default 64. */
  batchSize?: number;
  seed?: number;
  /** Images whose adversarial loss is measured before and after (default: the first 200 training images). */
  probe?: LabelledImages;
  signal?: AbortSignal;
  onBatch?: (info: { batch: number; epoch: number; elapsedMs: number; budgetMs: number; loss: number }) => void;
}

export interface PgdFinetuneResult {
  batches: number;
  /** Examples trained on / training images: fractional epochs. */
  epochs: number;
  examples: number;
  /** Time of the training loop (attacks + steps), what the budget bounds. */
  trainTimeMs: number;
  /** Slowest batch. */
  maxBatchMs: number;
  budgetMs: number;
  learningRate: number;
  batchSize: number;
  /** Mean cross-entropy under PGD on the probe images, before and after. */
  adversarialLossBefore: number;
  adversarialLossAfter: number;
  probeCount: number;
}

async function adversarialLoss(model: LayersModel, probe: LabelledImages, o: PgdFinetuneOptions, signal?: AbortSignal): Promise<number> {
  const adv = await pgd(model, probe.images, probe.labels, {
    eps: o.attack.eps,
    steps: o.attack.steps,
    stepSize: o.attack.stepSize,
    randomStart: o.attack.randomStart,
    clip: o.clip,
    seed: 12345,
    ...(o.normalization ? { normalization: o.normalization } : {}),
    ...(signal ? { signal } : {}),
  });
  return meanCrossEntropy(model, { images: adv, labels: probe.labels }, signal);
}

/** Adversarially fine-tunes `model` in place within the budget (images in its input space). */
export async function pgdFinetune(model: LayersModel, train: LabelledImages, options: PgdFinetuneOptions): Promise<PgdFinetuneResult> {
  const budgetMs = checkPositive(options.budgetMs, 'budgetMs');
  const learningRate = checkPositive(options.learningRate ?? 1e-4, 'learningRate');
  const batchSize = checkPositive(options.batchSize ?? 64, 'batchSize', true);
  const n = train.labels.length;
  if (n === 0) throw new RangeError('pgd-finetune needs training images');
  const shape = model.inputs[0]!.shape.slice(1) as [number, number, number];
  const inputSize = shape[0] * shape[1] * shape[2];
  const numClasses = model.outputs[0]!.shape[1] as number;
  const probe = options.probe ?? { images: train.images.subarray(0, Math.min(200, n) * inputSize), labels: Array.from(train.labels).slice(0, Math.min(200, n)) };
  const signal = options.signal;
  const adversarialLossBefore = await adversarialLoss(model, probe, options, signal);

  const random = new Random(options.seed ?? 0);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const optimizer = tf.train.adam(learningRate);
  const started = Date.now();
  let batches = 0;
  let examples = 0;
  let maxBatchMs = 0;
  let epoch = 0;
  try {
    outer: for (;;) {
      random.shuffle(order);
      for (let start = 0; start < n; start += batchSize) {
        if (signal?.aborted) throw abortError(signal);
        const elapsed = Date.now() - started;
        if (batches > 0 && elapsed + maxBatchMs > budgetMs) break outer;
        const t0 = Date.now();
        const size = Math.min(batchSize, n - start);
        const batch = gatherBatch(train, order, start, size, inputSize);
        const adv = await pgd(model, batch.images, batch.labels, {
          eps: options.attack.eps,
          steps: options.attack.steps,
          stepSize: options.attack.stepSize,
          randomStart: options.attack.randomStart,
          clip: options.clip,
          seed: (options.seed ?? 0) + 7919 * (batches + 1),
          batchSize: size,
          ...(options.normalization ? { normalization: options.normalization } : {}),
          ...(signal ? { signal } : {}),
        });
        const loss = trainStep(model, optimizer, adv, batch.labels, shape, numClasses);
        batches++;
        examples += size;
        maxBatchMs = Math.max(maxBatchMs, Date.now() - t0);
        options.onBatch?.({ batch: batches, epoch, elapsedMs: Date.now() - started, budgetMs, loss });
        await yieldToEventLoop();
      }
      epoch++;
    }
  } finally {
    optimizer.dispose();
  }
  const trainTimeMs = Date.now() - started;
  const adversarialLossAfter = await adversarialLoss(model, probe, options, signal);
  return {
    batches,
    epochs: examples / n,
    examples,
    trainTimeMs,
    maxBatchMs,
    budgetMs,
    learningRate,
    batchSize,
    adversarialLossBefore,
    adversarialLossAfter,
    probeCount: probe.labels.length,
  };
}
