/**
 * Margin rows kept as factors: the rows of {@link marginRows}, but the kernel block of every Dense
 * layer of the view is not formed. In inference mode the gradient of example b's margin with
 * respect to a Dense kernel is the outer product x_b ⊗ dy_b of the layer input and the gradient
 * at the layer output, so a row is stored as those two vectors per Dense layer ("factors") plus
 * the remaining coordinates (biases, convolution and BatchNorm blocks) in a compact "rest" vector
 * in increasing parameter order. A 784–4096–4096–10 MLP row is then 25 K floats instead of 2·10⁷.
 *
 * The forward pass, the backward pass and the per-example kernels for the rest are those of
 * batched-rows.ts. The native factored cut pool (lib/qp/factored-pool.ts) takes the rows as they
 * are; {@link expandFactoredRow} turns one back into a dense row (tests, QP dumps).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError, abortError } from '../errors.js';
import { compileModel, type ModelGraph } from './graph.js';
import { bnAffine, forwardGraph } from './forward.js';
import { backward, checkArguments, exampleKernels, rowBlocks, writeLayer, type LayerInput, type RowBlock } from './batched-rows.js';
import type { ParameterView } from './parameters.js';

/** A Dense kernel block of the view kept as x (rows = inputs) ⊗ d (cols = units). */
export interface FactorBlockSpec {
  layer: string;
  /** Offset of the kernel in the view's flat vector. */
  offset: number;
  rows: number;
  cols: number;
}

/** Where the factors and the rest of a view's rows sit. */
export interface FactoredLayout {
  /** view.size */
  n: number;
  /** The factored kernel blocks in offset order. */
  blocks: FactorBlockSpec[];
  /** Floats of a row's factors: Σ (rows + cols). */
  factorSize: number;
  /** The coordinates outside the blocks, as (offset, size) segments in increasing order. */
  restSegments: Array<[offset: number, size: number]>;
  restSize: number;
}

/** One factored row: per block x then d (blocks in order), and the rest coordinates. */
export interface FactoredRowData {
  factors: Float32Array;
  rest: Float32Array;
}

export interface FactoredMarginRowOptions {
  delta: number;
  classes: 'all' | 'worst';
  batchSize?: number;
  signal?: AbortSignal;
}

/** Margin rows as in MarginRows, each row as its factors. */
export interface FactoredMarginRows {
  count: number;
  example: Int32Array;
  wrongClass: Int32Array;
  value: Float64Array;
  rows: FactoredRowData[];
}

/** The factored layout of a view: every Dense kernel of it is a block, the rest is everything else. */
export function factoredLayout(model: LayersModel, view: ParameterView): FactoredLayout {
  const graph = compileModel(model);
  return layoutOf(graph, view);
}

function layoutOf(graph: ModelGraph, view: ParameterView): FactoredLayout {
  const denseLayers = new Set(graph.steps.filter((s) => s.kind === 'dense').map((s) => s.layer));
  const entries = [...view.entries].sort((a, b) => a.offset - b.offset);
  const blocks: FactorBlockSpec[] = [];
  const restSegments: Array<[number, number]> = [];
  let restSize = 0;
  for (const e of entries) {
    if (denseLayers.has(e.layer) && e.name === 'kernel' && e.shape.length === 2) {
      blocks.push({ layer: e.layer, offset: e.offset, rows: e.shape[0]!, cols: e.shape[1]! });
      continue;
    }
    const last = restSegments[restSegments.length - 1];
    if (last && last[0] + last[1] === e.offset) last[1] += e.size;
    else restSegments.push([e.offset, e.size]);
    restSize += e.size;
  }
  return { n: view.size, blocks, factorSize: blocks.reduce((s, b) => s + b.rows + b.cols, 0), restSegments, restSize };
}

/** Position of full coordinate `offset` (outside every block) in the rest vector. */
function restOffset(layout: FactoredLayout, offset: number): number {
  let at = 0;
  for (const [start, size] of layout.restSegments) {
    if (offset >= start && offset < start + size) return at + offset - start;
    at += size;
  }
  return -1;
}

/** The row as view.size float64 values (x_p·d_q is exact in float64). */
export function expandFactoredRow(layout: FactoredLayout, row: FactoredRowData, out: Float64Array = new Float64Array(layout.n)): Float64Array {
  let f = 0;
  for (const block of layout.blocks) {
    for (let p = 0; p < block.rows; p++) {
      const xp = row.factors[f + p]!;
      const base = block.offset + p * block.cols;
      for (let q = 0; q < block.cols; q++) out[base + q] = xp * row.factors[f + block.rows + q]!;
    }
    f += block.rows + block.cols;
  }
  let at = 0;
  for (const [start, size] of layout.restSegments) {
    for (let k = 0; k < size; k++) out[start + k] = row.rest[at + k]!;
    at += size;
  }
  return out;
}

/** aᵀw for a factored row and a dense vector (n values), in float64. */
export function factoredRowDot(layout: FactoredLayout, row: FactoredRowData, w: Float64Array): number {
  let sum = 0;
  let f = 0;
  for (const block of layout.blocks) {
    for (let p = 0; p < block.rows; p++) {
      const xp = row.factors[f + p]!;
      if (xp === 0) continue;
      const base = block.offset + p * block.cols;
      let s = 0;
      for (let q = 0; q < block.cols; q++) s += w[base + q]! * row.factors[f + block.rows + q]!;
      sum += xp * s;
    }
    f += block.rows + block.cols;
  }
  let at = 0;
  for (const [start, size] of layout.restSegments) {
    for (let k = 0; k < size; k++) sum += row.rest[at + k]! * w[start + k]!;
    at += size;
  }
  return sum;
}

/**
 * The margin rows g_ij(w) = f_j − f_y + δ of the examples with their gradients as factors (see the
 * file comment). Same rows, in the same order, as marginRows with the same delta and classes.
 */
export async function factoredMarginRows(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: FactoredMarginRowOptions,
): Promise<FactoredMarginRows> {
  let graph: ModelGraph | undefined;
  const checked = checkArguments(model, view, images, labels, { ...options, format: 'dense' }, () => (graph = compileModel(model)));
  const { n, delta, classes, batchSize } = checked;
  graph = graph!;
  const C = graph.numClasses;
  if (C < 2) throw new AdvcorrectError('ERR_MODEL', 'margins need a model with at least two classes');
  const layout = layoutOf(graph, view);
  const blocks = rowBlocks(graph, view);
  const k = exampleKernels();
  // Each layer's place in a row: its factor block (Dense kernels) and its other tensors remapped
  // to rest coordinates, so that the batched kernels write the rest straight into a compact row.
  const factorAt = new Map<number, { at: number; rows: number; cols: number }>();
  let f = 0;
  for (const b of layout.blocks) {
    const step = blocks.find((rb) => rb.step.layer === b.layer)!.step;
    factorAt.set(step.index, { at: f, rows: b.rows, cols: b.cols });
    f += b.rows + b.cols;
  }
  const restBlocks: RowBlock[] = blocks.map((rb) => {
    const factored = factorAt.has(rb.step.index);
    const map = (offset: number) => (offset < 0 ? -1 : restOffset(layout, offset));
    return {
      step: rb.step,
      kernel: factored ? -1 : map(rb.kernel),
      bias: map(rb.bias),
      gamma: map(rb.gamma),
      beta: map(rb.beta),
      blocks: rb.blocks.filter(([offset]) => !(factored && offset === rb.kernel)).map(([offset, size]) => [restOffset(layout, offset), size] as [number, number]),
    };
  });
  const wanted = new Set(blocks.map((b) => b.step.index));
  const lowest = blocks.length > 0 ? Math.min(...wanted) : graph.steps.length;
  const perExample = classes === 'all' ? C - 1 : 1;
  const total = n * perExample;
  const result: FactoredMarginRows = { count: total, example: new Int32Array(total), wrongClass: new Int32Array(total), value: new Float64Array(total), rows: new Array(total) };
  const signal = options.signal;
  for (let start = 0; start < n; start += batchSize) {
    if (signal?.aborted) throw abortError(signal);
    const end = Math.min(n, start + batchSize);
    const bsz = end - start;
    const kept: tf.Tensor[] = [];
    try {
      const values = tf.tidy(() => forwardGraph(graph!, tf.tensor(images.subarray(start * graph!.inputSize, end * graph!.inputSize), [bsz, ...graph!.inputShape], 'float32')));
      kept.push(...new Set(values.filter((v) => v !== undefined)));
      const logits = values[graph.outputSlot].dataSync() as Float32Array;
      const inputs = new Map<number, LayerInput>();
      for (const block of blocks) {
        const input = values[block.step.inputs[0]];
        const output = values[block.step.output];
        if (factorAt.has(block.step.index) && input.shape.length !== 2) {
          throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${block.step.layer}': factored rows need a Dense layer on a flat input, got shape [${input.shape.join(', ')}]`);
        }
        const a =
          block.step.kind === 'bn'
            ? (tf.tidy(() => tf.mul(tf.sub(input, block.step.weights.get('moving_mean')!.read()), bnAffine(block.step).invStd)).dataSync() as Float32Array)
            : (input.dataSync() as Float32Array);
        inputs.set(block.step.index, { a, inShape: input.shape as number[], outShape: output.shape as number[] });
      }
      for (let pass = 0; pass < perExample; pass++) {
        if (signal?.aborted) throw abortError(signal);
        const wrong = new Int32Array(bsz);
        const seed = new Float32Array(bsz * C);
        for (let b = 0; b < bsz; b++) {
          const y = labels[start + b]!;
          let j = -1;
          if (classes === 'all') j = pass < y ? pass : pass + 1;
          else for (let c = 0; c < C; c++) if (c !== y && (j < 0 || logits[b * C + c]! > logits[b * C + j]!)) j = c;
          wrong[b] = j;
          seed[b * C + j] += 1;
          seed[b * C + y] -= 1;
        }
        const deltas = new Map<number, Float32Array>();
        if (blocks.length > 0) {
          const tensors = tf.tidy(() => {
            const map = backward(graph!, values, tf.tensor2d(seed, [bsz, C]), wanted, lowest);
            return [...map.entries()].map(([index, t]) => [index, tf.clone(t)] as const);
          });
          for (const [index, t] of tensors) {
            deltas.set(index, t.dataSync() as Float32Array);
            t.dispose();
          }
        }
        // The rest of all rows of this pass in one matrix (bsz × restSize), by the batched kernels.
        const rest = new Float32Array(bsz * layout.restSize);
        if (layout.restSize > 0) {
          for (const block of restBlocks) {
            if (block.kernel < 0 && block.bias < 0 && block.gamma < 0 && block.beta < 0) continue;
            writeLayer(k, block, inputs.get(block.step.index)!, deltas.get(block.step.index), rest, 0, bsz, layout.restSize);
          }
        }
        for (let b = 0; b < bsz; b++) {
          const r = (start + b) * perExample + pass;
          const y = labels[start + b]!;
          result.example[r] = start + b;
          result.wrongClass[r] = wrong[b]!;
          result.value[r] = logits[b * C + wrong[b]!]! - logits[b * C + y]! + delta;
          const factors = new Float32Array(layout.factorSize);
          for (const [index, { at, rows, cols }] of factorAt) {
            factors.set(inputs.get(index)!.a.subarray(b * rows, (b + 1) * rows), at);
            const d = deltas.get(index);
            if (d) factors.set(d.subarray(b * cols, (b + 1) * cols), at + rows);
          }
          result.rows[r] = { factors, rest: rest.slice(b * layout.restSize, (b + 1) * layout.restSize) };
        }
        if (pass + 1 < perExample) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      for (const t of kept) t.dispose();
    }
    if (end < n) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return result;
}
