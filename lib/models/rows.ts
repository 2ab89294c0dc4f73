/**
 * Per-example gradient rows: the linearised margin constraints g_ij(w) = f_j − f_y + δ of a set
 * of examples and their gradients with respect to a parameter view (marginRows, forEachMarginRow),
 * one forward pass per batch and one seeded backward pass per wrong class.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../errors.js';
import type { ParameterView } from './parameters.js';
import { compileModel, type Conv2DSpec } from './graph.js';
import { forwardGraph, bnAffine } from './forward.js';
import { backwardGraph } from './backward.js';
import { batchTensor, checkAbort, checkBatchSize, checkExamples, checkView, yieldToEventLoop, type BatchOptions } from './batches.js';
import {
  appendDenseSparse,
  compressRange,
  nativeKernels,
  padOffsets,
  uninitialisedFloat32,
  viewSteps,
  writeExampleGradient,
  type StepInputs,
} from './example-gradients.js';

export interface MarginRowOptions extends BatchOptions {
  /** Margin δ ≥ 0 in g_ij(w) = f_j − f_y + δ. */
  delta: number;
  /** 'all': one row per wrong class j ≠ y; 'worst': one row per example, j = argmax_{j≠y} f_j. */
  classes: 'all' | 'worst';
  /** 'dense': Float32Array of view.size per row; 'sparse': (index, value) pairs, exact zeros dropped. */
  format: 'dense' | 'sparse';
  /**
   * Who forms the per-example weight gradients: 'native' (the addon's Eigen GEMM kernels),
   * 'js' (plain loops that skip ReLU zeros), or 'auto' (native when the addon loads; default).
   */
  kernels?: 'auto' | 'native' | 'js';
}

/**
 * Linearised margin constraints: row r belongs to example `example[r]` and wrong class
 * `wrongClass[r]`, has value g = f_j − f_y + δ (at the current weights) and gradient ∇_w g
 * with respect to the view's parameters, in the view's order. Rows are example-major
 * (for 'all': the wrong classes of example 0 ascending, then example 1, ...).
 */
export interface MarginRows {
  count: number;
  example: Int32Array;
  wrongClass: Int32Array;
  value: Float64Array;
  dense?: Float32Array[];
  sparse?: { index: Int32Array; value: Float32Array }[];
}

/**
 * Margin constraint rows g_ij(w) = f_j(x_i; w) − f_{y_i}(x_i; w) + δ and their gradients with
 * respect to the view's parameters, one forward pass per batch and one backward pass per seed
 * (e_j − e_y for every example at once); per-example weight gradients are formed from the kept
 * activations (Dense: a ⊗ δ; Conv2D: Σ_positions patch ⊗ δ; biases: Σ δ; BN: Σ δ·x̂ and Σ δ).
 */
export function marginRows(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: MarginRowOptions,
): Promise<MarginRows> {
  return computeMarginRows(model, view, images, labels, options, undefined);
}

/** One row handed to a {@link forEachMarginRow} visitor. Its arrays are reused: copy what you keep. */
export interface MarginRowVisit {
  /**
   * Row number (example-major, as in {@link MarginRows}). Rows are visited batch by batch and,
   * within a batch, wrong class by wrong class, so row numbers are not visited in order.
   */
  row: number;
  example: number;
  wrongClass: number;
  /** g = f_j − f_y + δ at the current weights. */
  value: number;
  /** format 'dense': the gradient (view.size floats), valid only during the call. */
  dense?: Float32Array;
  /** format 'sparse': nonzero entries, ascending indices, valid only during the call. */
  sparse?: { index: Int32Array; value: Float32Array };
}

/**
 * Like {@link marginRows}, but hands every row to `visit` in a reused buffer instead of allocating
 * one per row, e.g. to append it to a native cut pool that copies it. Prefer this for many rows:
 * a fresh 650 KB row costs far more to first touch (page faults) than to compute. The result has
 * the row metadata (count, example, wrongClass, value) but no dense/sparse arrays.
 */
export function forEachMarginRow(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: MarginRowOptions,
  visit: (row: MarginRowVisit) => void,
): Promise<MarginRows> {
  if (typeof visit !== 'function') return Promise.reject(new TypeError('visit must be a function'));
  return computeMarginRows(model, view, images, labels, options, visit);
}

async function computeMarginRows(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: MarginRowOptions,
  visit: ((row: MarginRowVisit) => void) | undefined,
): Promise<MarginRows> {
  checkView(model, view);
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { delta, classes, format } = options;
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta < 0) throw new RangeError('delta must be a finite number ≥ 0');
  if (classes !== 'all' && classes !== 'worst') throw new RangeError("classes must be 'all' or 'worst'");
  if (format !== 'dense' && format !== 'sparse') throw new RangeError("format must be 'dense' or 'sparse'");
  const batchSize = checkBatchSize(options.batchSize);
  const graph = compileModel(model);
  const n = checkExamples(graph, images, labels, true);
  const C = graph.numClasses;
  if (C < 2) throw new AdvcorrectError('ERR_MODEL', 'margins need a model with at least two classes');
  const steps = viewSteps(graph, view);
  const wanted = new Set(steps.map((s) => s.step.index));
  const stopAt = steps.length > 0 ? Math.min(...wanted) : graph.steps.length;
  const perExample = classes === 'all' ? C - 1 : 1;
  const total = n * perExample;
  const result: MarginRows = {
    count: total,
    example: new Int32Array(total),
    wrongClass: new Int32Array(total),
    value: new Float64Array(total),
  };
  const dense: Float32Array[] | undefined = format === 'dense' && !visit ? new Array(total) : undefined;
  const sparse: { index: Int32Array; value: Float32Array }[] | undefined = format === 'sparse' && !visit ? new Array(total) : undefined;
  const scratch = format === 'sparse' || visit ? new Float32Array(view.size) : undefined;
  // Units of the widest Dense step (its kernel is [in, out]).
  const nonzeroScratch = new Int32Array(
    Math.max(1, ...steps.filter((vs) => vs.step.kind === 'dense').map((vs) => vs.step.weights.get('kernel')!.read().shape[1] as number)),
  );
  const scratchIndex = format === 'sparse' ? new Int32Array(view.size) : undefined;
  const scratchValue = format === 'sparse' ? new Float32Array(view.size) : undefined;
  const signal = options.signal;
  const kernelChoice = options.kernels ?? 'auto';
  if (kernelChoice !== 'auto' && kernelChoice !== 'native' && kernelChoice !== 'js') throw new RangeError("kernels must be 'auto', 'native' or 'js'");
  const native = kernelChoice === 'js' ? null : nativeKernels();
  if (kernelChoice === 'native' && !native) {
    throw new AdvcorrectError('ERR_NATIVE_MISSING', "kernels: 'native' needs the advcorrect addon with its tensor kernels; build it with `npm run build:native`");
  }

  for (let start = 0; start < n; start += batchSize) {
    checkAbort(signal);
    const end = Math.min(n, start + batchSize);
    const bsz = end - start;
    const kept: tf.Tensor[] = [];
    try {
      const values = tf.tidy(() => forwardGraph(graph, batchTensor(graph, images, start, end)));
      kept.push(...values.filter((v, i) => v && values.indexOf(v) === i));
      const logits = values[graph.outputSlot].dataSync() as Float32Array;
      // Activations each parametric step needs (fetched once per batch, reused for every seed).
      const stepInputs = new Map<number, StepInputs>();
      for (const vs of steps) {
        const input = values[vs.step.inputs[0]];
        const output = values[vs.step.output];
        let a: Float32Array;
        if (vs.step.kind === 'bn') {
          a = tf.tidy(() => {
            const mean = vs.step.weights.get('moving_mean')!.read();
            return tf.mul(tf.sub(input, mean), bnAffine(vs.step).invStd);
          }).dataSync() as Float32Array;
        } else {
          a = input.dataSync() as Float32Array;
        }
        let pad: [number, number] = [0, 0];
        let convShape: Int32Array | undefined;
        if (vs.step.kind === 'conv2d') {
          const spec = vs.step.conv as Conv2DSpec;
          const [, H, W, cin] = input.shape as number[];
          const [, Ho, Wo, cout] = output.shape as number[];
          pad = padOffsets(H, W, Ho, Wo, spec);
          convShape = Int32Array.from([1, H, W, cin, Ho, Wo, cout, spec.kernelH, spec.kernelW, spec.strides[0], spec.strides[1], spec.dilation[0], spec.dilation[1], pad[0], pad[1]]);
        }
        stepInputs.set(vs.step.index, {
          a,
          inShape: input.shape as number[],
          outShape: output.shape as number[],
          pad,
          ...(native && vs.step.kind !== 'bn' ? { native } : {}),
          ...(convShape ? { convShape } : {}),
        });
      }
      for (let pass = 0; pass < perExample; pass++) {
        checkAbort(signal);
        const wrong = new Int32Array(bsz);
        for (let b = 0; b < bsz; b++) {
          const y = labels[start + b];
          if (classes === 'all') wrong[b] = pass < y ? pass : pass + 1;
          else {
            let best = -1;
            let bestValue = -Infinity;
            for (let j = 0; j < C; j++) {
              if (j === y) continue;
              const v = logits[b * C + j];
              if (best < 0 || v > bestValue) {
                best = j;
                bestValue = v;
              }
            }
            wrong[b] = best;
          }
        }
        const seedValues = new Float32Array(bsz * C);
        for (let b = 0; b < bsz; b++) {
          seedValues[b * C + wrong[b]] += 1;
          seedValues[b * C + labels[start + b]] -= 1;
        }
        const deltas = new Map<number, Float32Array>();
        if (steps.length > 0) {
          const dTensors = tf.tidy(() => {
            const map = backwardGraph(graph, values, tf.tensor2d(seedValues, [bsz, C]), stopAt, wanted);
            return [...map.entries()].map(([k, t]) => ({ k, t: tf.clone(t) }));
          });
          for (const { k, t } of dTensors) {
            deltas.set(k, t.dataSync() as Float32Array);
            t.dispose();
          }
        }
        // One example per native call is too small to share between threads: OpenMP's fork/join
        // costs more than the work (measured: 2.2 ms vs 0.08 ms for a 1568×100 outer product).
        const threads = native ? native.threadCount() : 0;
        if (native && threads !== 1) native.setThreadCount(1);
        try {
        for (let b = 0; b < bsz; b++) {
          const r = (start + b) * perExample + pass;
          const y = labels[start + b];
          result.example[r] = start + b;
          result.wrongClass[r] = wrong[b];
          result.value[r] = logits[b * C + wrong[b]] - logits[b * C + y] + delta;
          const row = dense ? uninitialisedFloat32(view.size) : (scratch as Float32Array);
          let nnz = 0;
          if (format === 'dense') {
            for (const vs of steps) writeExampleGradient(vs, stepInputs.get(vs.step.index)!, deltas.get(vs.step.index), b, row);
          } else {
            for (const vs of steps) {
              const d = deltas.get(vs.step.index);
              const inputs = stepInputs.get(vs.step.index)!;
              if (vs.step.kind === 'dense' && d) {
                // Straight to (index, value): O(nonzeros) instead of a scan of the whole block.
                nnz = appendDenseSparse(vs, inputs, d, b, scratchIndex as Int32Array, scratchValue as Float32Array, nnz, nonzeroScratch);
              } else {
                writeExampleGradient(vs, inputs, d, b, row);
                for (const [offset, size] of vs.regions) {
                  nnz = compressRange(row, offset, offset + size, scratchIndex as Int32Array, scratchValue as Float32Array, nnz);
                }
              }
            }
          }
          if (visit) {
            const info: MarginRowVisit = { row: r, example: start + b, wrongClass: wrong[b], value: result.value[r] };
            if (format === 'dense') info.dense = row;
            else info.sparse = { index: (scratchIndex as Int32Array).subarray(0, nnz), value: (scratchValue as Float32Array).subarray(0, nnz) };
            visit(info);
          } else if (dense) dense[r] = row;
          else {
            (sparse as { index: Int32Array; value: Float32Array }[])[r] = {
              index: (scratchIndex as Int32Array).slice(0, nnz),
              value: (scratchValue as Float32Array).slice(0, nnz),
            };
          }
        }
        } finally {
          if (native && threads !== 1) native.setThreadCount(threads);
        }
        if (pass + 1 < perExample) await yieldToEventLoop();
      }
    } finally {
      for (const t of kept) t.dispose();
    }
    options.onProgress?.(end, n);
    if (end < n) await yieldToEventLoop();
  }
  if (dense) result.dense = dense;
  if (sparse) result.sparse = sparse;
  return result;
}
