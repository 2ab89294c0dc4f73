/**
 * Margin rows from batched per-example gradients: the same rows as {@link marginRows} in
 * gradients.ts, computed with one forward pass per batch, one backward pass per seed over the
 * whole batch, and then one native call per parametric layer that forms every example's weight
 * gradient at once, straight into a batch × view.size row matrix (native/kernels/per_example.cpp).
 *
 * In inference mode the examples of a batch are independent (BatchNormalization uses its moving
 * statistics), so the backward pass of the batch already holds, per example, the gradient dY of
 * each layer's output; the weight gradient of example b is then a product of its layer input and
 * dY_b (Dense: x_b ⊗ dy_b; Conv2D: im2col(x_b)ᵀ·dY_b; biases: Σ dY_b; BN: Σ dY_b·x̂_b and Σ dY_b).
 *
 * lib/models/factored-rows.ts reuses the pieces (argument checks, blocks, the backward pass, the
 * kernels) for rows kept as factors.
 *
 * Needs the addon's per-example kernels: without them it throws ERR_NATIVE_MISSING, and
 * `kernels: 'js'` is refused with ERR_UNSUPPORTED, so a caller falls back to marginRows explicitly.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError, abortError } from '../errors.js';
import { type NativeKernels, nativeKernels } from '../backend/native-kernels.js';
import { compileModel, tfPadding, type Conv2DSpec, type GraphStep, type ModelGraph } from './graph.js';
import { bnAffine, convOp, forwardGraph } from './forward.js';
import type { MarginRowOptions, MarginRows, MarginRowVisit } from './rows.js';
import { ParameterView } from './parameters.js';

/** The per-example kernels this module calls (a part of {@link NativeKernels}). */
export type ExampleKernels = Required<Pick<NativeKernels, 'denseExampleGradients' | 'conv2dExampleGradients' | 'batchNormExampleGradients'>>;

/** A parametric layer of the view and where its tensors sit in a row (-1: not in the view). */
export interface RowBlock {
  step: GraphStep;
  kernel: number;
  bias: number;
  gamma: number;
  beta: number;
  /** Floats of this layer's blocks, to zero them when no gradient reaches the layer. */
  blocks: Array<[offset: number, size: number]>;
}

const DEFAULT_BATCH = 64;
/** Floats of the reused row matrix of the visitor and sparse forms (4 MB). */
const CHUNK_FLOATS = 1 << 20;

/**
 * {@link marginRows} with batched per-example gradients (same inputs, same rows to float32
 * round-off). Dense rows of one batch and wrong-class pass are views into one shared
 * batch × view.size buffer.
 */
export function batchedMarginRows(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: MarginRowOptions,
): Promise<MarginRows> {
  return run(model, view, images, labels, options, undefined);
}

/**
 * {@link forEachMarginRow} with batched per-example gradients: every row goes to `visit` in a
 * reused buffer (copy what you keep); the result has the row metadata but no dense/sparse arrays.
 */
export function forEachBatchedMarginRow(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: MarginRowOptions,
  visit: (row: MarginRowVisit) => void,
): Promise<MarginRows> {
  if (typeof visit !== 'function') return Promise.reject(new TypeError('visit must be a function'));
  return run(model, view, images, labels, options, visit);
}

/** The addon's per-example kernels; ERR_NATIVE_MISSING when the addon lacks them. */
export function exampleKernels(): ExampleKernels {
  let k: NativeKernels;
  try {
    k = nativeKernels();
  } catch (error) {
    throw new AdvcorrectError('ERR_NATIVE_MISSING', `batched margin rows need the advcorrect addon: ${(error as Error).message}`, { cause: error });
  }
  if (typeof k.denseExampleGradients !== 'function' || typeof k.conv2dExampleGradients !== 'function' || typeof k.batchNormExampleGradients !== 'function') {
    throw new AdvcorrectError(
      'ERR_NATIVE_MISSING',
      'the advcorrect addon was built without the per-example gradient kernels; rebuild it with `npm run build:native`',
    );
  }
  return k as ExampleKernels;
}

export function checkArguments(model: LayersModel, view: unknown, images: unknown, labels: unknown, options: unknown, compile: () => ModelGraph) {
  if (!(view instanceof ParameterView)) throw new TypeError('view must be a ParameterView');
  if (view.model !== model) throw new RangeError('view was made for another model');
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { delta, classes, format, batchSize, kernels } = options as MarginRowOptions;
  if (typeof delta !== 'number' || !Number.isFinite(delta) || delta < 0) throw new RangeError('delta must be a finite number ≥ 0');
  if (classes !== 'all' && classes !== 'worst') throw new RangeError("classes must be 'all' or 'worst'");
  if (format !== 'dense' && format !== 'sparse') throw new RangeError("format must be 'dense' or 'sparse'");
  if (batchSize !== undefined && (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize <= 0)) {
    throw new RangeError('batchSize must be a positive integer');
  }
  if (kernels !== undefined && kernels !== 'auto' && kernels !== 'native' && kernels !== 'js') {
    throw new RangeError("kernels must be 'auto', 'native' or 'js'");
  }
  if (kernels === 'js') {
    throw new AdvcorrectError('ERR_UNSUPPORTED', "batched margin rows run on the native kernels only; use marginRows for kernels: 'js'");
  }
  const graph = compile();
  if (!(images instanceof Float32Array)) throw new TypeError('images must be a Float32Array');
  if (images.length % graph.inputSize !== 0) {
    throw new RangeError(`images has length ${images.length}, not a multiple of the model's input size ${graph.inputSize} (${graph.inputShape.join('×')})`);
  }
  const n = images.length / graph.inputSize;
  if (labels === null || typeof labels !== 'object' || typeof (labels as ArrayLike<number>).length !== 'number') {
    throw new TypeError('labels must be an array-like of class indices');
  }
  const l = labels as ArrayLike<number>;
  if (l.length !== n) throw new RangeError(`labels has length ${l.length}, expected ${n} (one per image)`);
  for (let i = 0; i < n; i++) {
    if (!Number.isInteger(l[i]) || l[i] < 0 || l[i] >= graph.numClasses) {
      throw new RangeError(`labels[${i}] = ${l[i]} is not a class index in [0, ${graph.numClasses})`);
    }
  }
  return { n, graph, delta, classes, format, batchSize: batchSize ?? DEFAULT_BATCH };
}

/** The view's parametric layers in graph order; ERR_UNSUPPORTED for parameters the kernels cannot form. */
export function rowBlocks(graph: ModelGraph, view: ParameterView): RowBlock[] {
  const blocks: RowBlock[] = [];
  const seen = new Set<string>();
  for (const step of graph.steps) {
    const entries = view.entries.filter((e) => e.layer === step.layer);
    if (entries.length === 0) continue;
    const names = step.kind === 'dense' || step.kind === 'conv2d' ? ['kernel', 'bias'] : step.kind === 'bn' ? ['gamma', 'beta'] : [];
    for (const e of entries) {
      if (!names.includes(e.name)) {
        throw new AdvcorrectError(
          'ERR_UNSUPPORTED',
          `layer '${step.layer}' (${step.className}): per-example gradients of its tensor '${e.name}' are not supported by the batched kernels`,
        );
      }
      seen.add(`${e.layer}/${e.name}`);
    }
    const at = (name: string): number => entries.find((e) => e.name === name)?.offset ?? -1;
    blocks.push({
      step,
      kernel: at('kernel'),
      bias: at('bias'),
      gamma: at('gamma'),
      beta: at('beta'),
      blocks: entries.map((e) => [e.offset, e.size]),
    });
  }
  for (const e of view.entries) {
    if (!seen.has(`${e.layer}/${e.name}`)) {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `parameter ${e.layer}/${e.name} is not reachable by the batched gradient kernels`);
    }
  }
  return blocks;
}

/** Top and left zero padding of a conv step, as tfjs computes it ('same': the smaller half on top/left). */
function convPadding(spec: Conv2DSpec, inH: number, inW: number, outH: number, outW: number): [number, number] {
  const p = spec.padding;
  if (p === 'valid') return [0, 0];
  if (typeof p === 'object') return [p.top, p.left];
  const spanH = (spec.kernelH - 1) * spec.dilation[0] + 1;
  const spanW = (spec.kernelW - 1) * spec.dilation[1] + 1;
  const totalH = Math.max(0, (outH - 1) * spec.strides[0] + spanH - inH);
  const totalW = Math.max(0, (outW - 1) * spec.strides[1] + spanW - inW);
  return [Math.floor(totalH / 2), Math.floor(totalW / 2)];
}

/** The vector-Jacobian product of a parameter-free step (activations and pooling) by tfjs' own gradients. */
function parameterFreeGradient(step: GraphStep, input: tf.Tensor, output: tf.Tensor, g: tf.Tensor): tf.Tensor {
  const pool = step.pool;
  switch (step.kind) {
    case 'relu':
      return tf.mul(g, tf.step(output));
    case 'leakyrelu':
      return tf.grad((x: tf.Tensor) => tf.leakyRelu(x, step.alpha ?? 0.3))(input, g);
    case 'sigmoid':
      return tf.grad((x: tf.Tensor) => tf.sigmoid(x))(input, g);
    case 'tanh':
      return tf.grad((x: tf.Tensor) => tf.tanh(x))(input, g);
    case 'maxpool':
      return tf.grad((x: tf.Tensor) => tf.maxPool(x as tf.Tensor4D, pool!.size, pool!.strides, 'valid'))(input, g);
    case 'avgpool':
      return tf.grad((x: tf.Tensor) => tf.avgPool(x as tf.Tensor4D, pool!.size, pool!.strides, 'valid'))(input, g);
    default:
      throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${step.layer}' (${step.className}) is not supported by the batched backward pass`);
  }
}

/**
 * One backward pass of Σ_b ⟨seed_b, logits_b⟩ over the batch, down to the lowest wanted step.
 * Returns, for each wanted step, the gradient with respect to its pre-activation output
 * (undefined when the seed does not reach it). Run inside tf.tidy.
 */
export function backward(graph: ModelGraph, values: tf.Tensor[], seed: tf.Tensor, wanted: Set<number>, lowest: number): Map<number, tf.Tensor> {
  const grads: Array<tf.Tensor | undefined> = new Array(graph.slotCount);
  grads[graph.outputSlot] = seed;
  const add = (slot: number, g: tf.Tensor): void => {
    const before = grads[slot];
    grads[slot] = before ? tf.add(before, g) : g;
  };
  const result = new Map<number, tf.Tensor>();
  for (let k = graph.steps.length - 1; k >= lowest; k--) {
    const step = graph.steps[k];
    let g = grads[step.output];
    if (!g) continue;
    const output = values[step.output];
    if (step.activation === 'relu') g = tf.mul(g, tf.step(output));
    if (wanted.has(k)) result.set(k, g);
    if (k === lowest) break;
    const input = values[step.inputs[0]];
    switch (step.kind) {
      case 'dense':
        add(step.inputs[0], tf.matMul(g as tf.Tensor2D, step.weights.get('kernel')!.read() as tf.Tensor2D, false, true));
        break;
      case 'conv2d': {
        const spec = step.conv as Conv2DSpec;
        const kernel = step.weights.get('kernel')!.read() as tf.Tensor4D;
        const plain = spec.dilation[0] === 1 && spec.dilation[1] === 1;
        add(
          step.inputs[0],
          plain
            ? tf.conv2dTranspose(g as tf.Tensor4D, kernel, input.shape as [number, number, number, number], spec.strides, tfPadding(spec))
            : tf.grad((x: tf.Tensor) => convOp(x as tf.Tensor4D, kernel, spec))(input, g),
        );
        break;
      }
      case 'identity':
        add(step.inputs[0], g);
        break;
      case 'flatten':
        add(step.inputs[0], tf.reshape(g, input.shape));
        break;
      case 'zeropad': {
        const [[top], [left]] = step.padding as [[number, number], [number, number]];
        add(step.inputs[0], tf.slice(g, [0, top, left, 0], input.shape));
        break;
      }
      case 'bn':
        add(step.inputs[0], tf.mul(g, bnAffine(step).scale));
        break;
      case 'add':
        for (const slot of step.inputs) add(slot, g);
        break;
      case 'globalAvgPool': {
        // global average pooling: every position gets g / (H·W)
        const [batch, h, w, c] = input.shape;
        add(step.inputs[0], tf.broadcastTo(tf.div(tf.reshape(g, [batch, 1, 1, c]), h * w), input.shape));
        break;
      }
      case 'concat': {
        const widths = step.inputs.map((slot) => values[slot].shape[values[slot].rank - 1] as number);
        tf.split(g, widths, -1).forEach((part, i) => add(step.inputs[i], part));
        break;
      }
      default:
        add(step.inputs[0], parameterFreeGradient(step, input, output, g));
        break;
    }
  }
  return result;
}

/** A Float32Array over fresh memory that is not zero-filled (every element is written before use). */
export function unfilledFloat32(length: number): Float32Array {
  const bytes = Buffer.allocUnsafeSlow(length * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, length);
}

/** The nonzero entries of row as ascending (index, value) pairs, into index/value; returns the count. */
function compress(row: Float32Array, index: Int32Array, value: Float32Array): number {
  let k = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    index[k] = i;
    value[k] = v;
    k += +(v !== 0);
  }
  return k;
}

/** Per-batch inputs of one parametric layer: its input (Dense/Conv2D) or x̂ (BN), and its geometry. */
export interface LayerInput {
  a: Float32Array;
  inShape: number[];
  outShape: number[];
}

/**
 * Writes the gradient blocks of one layer for examples [b0, b1) of the batch into rows 0 … b1 − b0
 * of the row matrix (zeros when d is undefined).
 */
export function writeLayer(
  k: ExampleKernels,
  block: RowBlock,
  input: LayerInput,
  d: Float32Array | undefined,
  rows: Float32Array,
  b0: number,
  b1: number,
  stride: number,
): void {
  const batch = b1 - b0;
  if (!d) {
    for (let b = 0; b < batch; b++) for (const [offset, size] of block.blocks) rows.fill(0, b * stride + offset, b * stride + offset + size);
    return;
  }
  const { step } = block;
  const { inShape, outShape } = input;
  const inSize = inShape.slice(1).reduce((x, y) => x * y, 1);
  const outSize = outShape.slice(1).reduce((x, y) => x * y, 1);
  const a = input.a.subarray(b0 * inSize, b1 * inSize);
  d = d.subarray(b0 * outSize, b1 * outSize);
  if (step.kind === 'dense') {
    k.denseExampleGradients(a, d, rows, batch, inShape[1], outShape[1], stride, block.kernel, block.bias);
  } else if (step.kind === 'conv2d') {
    const spec = step.conv as Conv2DSpec;
    const [, inH, inW, inC] = inShape;
    const [, outH, outW, outC] = outShape;
    const [padTop, padLeft] = convPadding(spec, inH, inW, outH, outW);
    const shape = Int32Array.from([
      batch, inH, inW, inC, outH, outW, outC, spec.kernelH, spec.kernelW,
      spec.strides[0], spec.strides[1], spec.dilation[0], spec.dilation[1], padTop, padLeft,
    ]);
    k.conv2dExampleGradients(a, d, rows, shape, stride, block.kernel, block.bias);
  } else {
    const channels = outShape[outShape.length - 1];
    const positions = outShape.slice(1, -1).reduce((x, y) => x * y, 1);
    k.batchNormExampleGradients(a, d, rows, batch, positions, channels, stride, block.gamma, block.beta);
  }
}

async function run(
  model: LayersModel,
  view: ParameterView,
  images: Float32Array,
  labels: ArrayLike<number>,
  options: MarginRowOptions,
  visit: ((row: MarginRowVisit) => void) | undefined,
): Promise<MarginRows> {
  const { n, graph, delta, classes, format, batchSize } = checkArguments(model, view, images, labels, options, () => compileModel(model));
  const C = graph.numClasses;
  if (C < 2) throw new AdvcorrectError('ERR_MODEL', 'margins need a model with at least two classes');
  const blocks = rowBlocks(graph, view);
  const k = exampleKernels();
  const wanted = new Set(blocks.map((b) => b.step.index));
  const lowest = blocks.length > 0 ? Math.min(...wanted) : graph.steps.length;
  const perExample = classes === 'all' ? C - 1 : 1;
  const total = n * perExample;
  const stride = view.size;
  const result: MarginRows = { count: total, example: new Int32Array(total), wrongClass: new Int32Array(total), value: new Float64Array(total) };
  const dense: Float32Array[] | undefined = format === 'dense' && !visit ? new Array(total) : undefined;
  const sparse: { index: Int32Array; value: Float32Array }[] | undefined = format === 'sparse' && !visit ? new Array(total) : undefined;
  // Dense rows without a visitor keep their matrix (one per batch and pass). Otherwise the rows are
  // formed a chunk of examples at a time in one reused matrix of about 4 MB, small enough to stay in
  // cache until the visitor (or the sparse compression) reads it: measured on the CNN (512 rows),
  // the Dense-layer kernel took 24–29 ms of CPU time instead of 165 ms with a 64-row (41 MB) matrix.
  const chunk = dense ? batchSize : Math.max(1, Math.min(batchSize, n, Math.floor(CHUNK_FLOATS / Math.max(1, stride))));
  const scratch = dense || stride === 0 ? undefined : unfilledFloat32(chunk * stride);
  const sparseIndex = format === 'sparse' ? new Int32Array(stride) : undefined;
  const sparseValue = format === 'sparse' ? new Float32Array(stride) : undefined;
  const signal = options.signal;

  for (let start = 0; start < n; start += batchSize) {
    if (signal?.aborted) throw abortError(signal);
    const end = Math.min(n, start + batchSize);
    const bsz = end - start;
    const kept: tf.Tensor[] = [];
    try {
      const values = tf.tidy(() =>
        forwardGraph(graph, tf.tensor(images.subarray(start * graph.inputSize, end * graph.inputSize), [bsz, ...graph.inputShape], 'float32')),
      );
      kept.push(...new Set(values.filter((v) => v !== undefined)));
      const logits = values[graph.outputSlot].dataSync() as Float32Array;
      const inputs = new Map<number, LayerInput>();
      for (const block of blocks) {
        const input = values[block.step.inputs[0]];
        const output = values[block.step.output];
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
          const y = labels[start + b];
          let j = -1;
          if (classes === 'all') j = pass < y ? pass : pass + 1;
          else {
            for (let c = 0; c < C; c++) if (c !== y && (j < 0 || logits[b * C + c] > logits[b * C + j])) j = c;
          }
          wrong[b] = j;
          seed[b * C + j] += 1;
          seed[b * C + y] -= 1;
        }
        const deltas = new Map<number, Float32Array>();
        if (blocks.length > 0) {
          const tensors = tf.tidy(() => {
            const map = backward(graph, values, tf.tensor2d(seed, [bsz, C]), wanted, lowest);
            return [...map.entries()].map(([index, t]) => [index, tf.clone(t)] as const);
          });
          for (const [index, t] of tensors) {
            deltas.set(index, t.dataSync() as Float32Array);
            t.dispose();
          }
        }
        for (let c0 = 0; c0 < bsz; c0 += chunk) {
          const c1 = Math.min(bsz, c0 + chunk);
          const rows = scratch ?? unfilledFloat32((c1 - c0) * stride);
          for (const block of blocks) writeLayer(k, block, inputs.get(block.step.index)!, deltas.get(block.step.index), rows, c0, c1, stride);
          for (let b = c0; b < c1; b++) {
            const r = (start + b) * perExample + pass;
            const y = labels[start + b];
            result.example[r] = start + b;
            result.wrongClass[r] = wrong[b];
            result.value[r] = logits[b * C + wrong[b]] - logits[b * C + y] + delta;
            const row = rows.subarray((b - c0) * stride, (b - c0 + 1) * stride);
            if (dense) {
              dense[r] = row;
              continue;
            }
            if (format === 'dense') {
              visit!({ row: r, example: start + b, wrongClass: wrong[b], value: result.value[r], dense: row });
              continue;
            }
            const nnz = compress(row, sparseIndex!, sparseValue!);
            if (visit) {
              visit({ row: r, example: start + b, wrongClass: wrong[b], value: result.value[r], sparse: { index: sparseIndex!.subarray(0, nnz), value: sparseValue!.subarray(0, nnz) } });
            } else {
              sparse![r] = { index: sparseIndex!.slice(0, nnz), value: sparseValue!.slice(0, nnz) };
            }
          }
        }
        if (pass + 1 < perExample) await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      for (const t of kept) t.dispose();
    }
    options.onProgress?.(end, n);
    if (end < n) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (dense) result.dense = dense;
  if (sparse) result.sparse = sparse;
  return result;
}
