import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError, abortError } from '../errors.js';
import { ParameterView } from './parameters.js';
import { loadNative } from '../native.js';

/**
 * A LayersModel compiled into a list of steps that this package evaluates with its own tf ops,
 * so that the forward pass can keep every activation and the backward pass can be seeded freely
 * (see gradients.ts). Supported layers: InputLayer, Dense, Conv2D (channels-last, any
 * strides/dilation, valid or same padding), ReLU, Activation (relu or linear), Flatten,
 * ZeroPadding2D, BatchNormalization (inference: fixed statistics), Add, GlobalAveragePooling2D,
 * Dropout (identity at inference). Anything else is refused with ERR_UNSUPPORTED.
 */

export type StepKind = 'dense' | 'conv2d' | 'relu' | 'identity' | 'flatten' | 'zeropad' | 'bn' | 'add' | 'gap' | ElementwiseKind | 'maxpool' | 'avgpool' | 'concat';
/** Parameter-free activations besides ReLU (ONNX imports). */
export type ElementwiseKind = 'leakyrelu' | 'sigmoid' | 'tanh';

export interface Conv2DSpec {
  kernelH: number;
  kernelW: number;
  strides: [number, number];
  dilation: [number, number];
  /** tfjs padding, or explicit zero padding (a ZeroPadding2D fused into the following valid conv). */
  padding: 'valid' | 'same' | { top: number; bottom: number; left: number; right: number };
}

export interface GraphStep {
  index: number;
  readonly layer: string;
  readonly className: string;
  readonly kind: StepKind;
  /** Slots of the input tensors. */
  inputs: number[];
  /** Slot of the output tensor. */
  readonly output: number;
  /** Fused activation of Dense/Conv2D. */
  readonly activation: 'linear' | 'relu';
  /** Layer variables by short name (kernel, bias, gamma, beta, moving_mean, moving_variance). */
  readonly weights: Map<string, { read(): tf.Tensor }>;
  conv?: Conv2DSpec;
  readonly padding?: [[number, number], [number, number]];
  readonly epsilon?: number;
  /** LeakyReLU slope. */
  readonly alpha?: number;
  /** Max/average pooling window and strides ('valid' padding). */
  readonly pool?: { size: [number, number]; strides: [number, number] };
}

export interface ModelGraph {
  readonly steps: GraphStep[];
  readonly slotCount: number;
  readonly inputSlot: number;
  readonly outputSlot: number;
  /** Input shape without the batch dimension. */
  readonly inputShape: number[];
  readonly inputSize: number;
  readonly numClasses: number;
}

interface SymbolicLike {
  id: number;
  shape: Array<number | null>;
}
interface NodeLike {
  inputTensors: SymbolicLike[];
  outputTensors: SymbolicLike[];
}
interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  inboundNodes: NodeLike[];
  weights: Array<{ name: string; originalName?: string; read(): tf.Tensor }>;
}

function weightShortName(variable: { name: string; originalName?: string }): string {
  const full = variable.originalName ?? variable.name;
  const slash = full.lastIndexOf('/');
  return (slash >= 0 ? full.slice(slash + 1) : full).replace(/_\d+$/, '');
}

function pair(value: unknown, what: string, layer: string): [number, number] {
  if (typeof value === 'number') return [value, value];
  if (Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number')) return [value[0], value[1]];
  throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${layer}': cannot read its ${what} (${JSON.stringify(value)})`);
}

function activationOf(config: Record<string, unknown>, layer: string): 'linear' | 'relu' {
  const act = config.activation ?? 'linear';
  const name = typeof act === 'string' ? act : (act as { className?: string })?.className;
  const lowered = String(name).toLowerCase();
  if (lowered === 'linear' || lowered === 'relu') return lowered;
  throw new AdvcorrectError(
    'ERR_UNSUPPORTED',
    `layer '${layer}' uses activation '${String(name)}'; only relu and linear are supported (models must output logits)`,
  );
}

const cache = new WeakMap<LayersModel, ModelGraph>();

/** Compiles (once per model) the model's layer graph into steps; throws ERR_UNSUPPORTED on other layers. */
export function compileModel(model: LayersModel): ModelGraph {
  const cached = cache.get(model);
  if (cached) return cached;
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new AdvcorrectError('ERR_UNSUPPORTED', 'only models with one input and one output are supported');
  }
  const slots = new Map<number, number>();
  const input = model.inputs[0] as unknown as SymbolicLike;
  slots.set(input.id, 0);
  let slotCount = 1;
  const steps: GraphStep[] = [];
  for (const rawLayer of model.layers) {
    const layer = rawLayer as unknown as LayerLike;
    const className = layer.getClassName();
    if (className === 'InputLayer') continue;
    const node = layer.inboundNodes.find((n) => n.inputTensors.length > 0 && n.inputTensors.every((t) => slots.has(t.id)));
    if (!node) {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${layer.name}' is not connected to the model input in a way this engine understands`);
    }
    if (node.outputTensors.length !== 1) {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${layer.name}' has ${node.outputTensors.length} outputs; only single-output layers are supported`);
    }
    const inputs = node.inputTensors.map((t) => slots.get(t.id) as number);
    const output = slotCount++;
    slots.set(node.outputTensors[0].id, output);
    const config = layer.getConfig();
    const weights = new Map<string, { read(): tf.Tensor }>();
    for (const w of layer.weights) weights.set(weightShortName(w), w);
    const base = { index: steps.length, layer: layer.name, className, inputs, output, weights };
    const inShape = node.inputTensors[0].shape;
    const requireChannelsLast = (): void => {
      const format = config.dataFormat ?? 'channelsLast';
      if (format !== 'channelsLast') {
        throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${layer.name}' uses dataFormat ${String(format)}; only channelsLast is supported`);
      }
    };
    switch (className) {
      case 'Dense': {
        if (inShape.length !== 2) {
          throw new AdvcorrectError('ERR_UNSUPPORTED', `Dense layer '${layer.name}' has a rank-${inShape.length} input; only rank-2 inputs (after Flatten) are supported`);
        }
        steps.push({ ...base, kind: 'dense', activation: activationOf(config, layer.name) });
        break;
      }
      case 'Conv2D': {
        requireChannelsLast();
        const kernel = weights.get('kernel');
        if (!kernel) throw new AdvcorrectError('ERR_UNSUPPORTED', `Conv2D layer '${layer.name}' has no kernel`);
        const kshape = kernel.read().shape as number[];
        const padding = config.padding;
        if (padding !== 'valid' && padding !== 'same') {
          throw new AdvcorrectError('ERR_UNSUPPORTED', `Conv2D layer '${layer.name}' uses padding '${String(padding)}'`);
        }
        const conv: Conv2DSpec = {
          kernelH: kshape[0] as number,
          kernelW: kshape[1] as number,
          strides: pair(config.strides ?? 1, 'strides', layer.name),
          dilation: pair(config.dilationRate ?? 1, 'dilation rate', layer.name),
          padding,
        };
        steps.push({ ...base, kind: 'conv2d', activation: activationOf(config, layer.name), conv });
        break;
      }
      case 'ReLU': {
        if (config.maxValue !== null && config.maxValue !== undefined) {
          throw new AdvcorrectError('ERR_UNSUPPORTED', `ReLU layer '${layer.name}' has a maxValue; only plain ReLU is supported`);
        }
        steps.push({ ...base, kind: 'relu', activation: 'linear' });
        break;
      }
      case 'Activation': {
        const named = String(config.activation).toLowerCase();
        if (named === 'sigmoid' || named === 'tanh') {
          steps.push({ ...base, kind: named, activation: 'linear' });
          break;
        }
        const act = activationOf(config, layer.name);
        steps.push({ ...base, kind: act === 'relu' ? 'relu' : 'identity', activation: 'linear' });
        break;
      }
      case 'Dropout':
        steps.push({ ...base, kind: 'identity', activation: 'linear' });
        break;
      case 'Flatten':
        steps.push({ ...base, kind: 'flatten', activation: 'linear' });
        break;
      case 'ZeroPadding2D': {
        requireChannelsLast();
        const p = config.padding;
        let padding: [[number, number], [number, number]];
        if (typeof p === 'number') padding = [[p, p], [p, p]];
        else if (Array.isArray(p) && p.length === 2 && typeof p[0] === 'number') padding = [[p[0], p[0]], [p[1], p[1]]] as [[number, number], [number, number]];
        else if (Array.isArray(p) && p.length === 2) padding = [pair(p[0], 'padding', layer.name), pair(p[1], 'padding', layer.name)];
        else throw new AdvcorrectError('ERR_UNSUPPORTED', `ZeroPadding2D layer '${layer.name}': cannot read padding ${JSON.stringify(p)}`);
        steps.push({ ...base, kind: 'zeropad', activation: 'linear', padding });
        break;
      }
      case 'BatchNormalization': {
        const axis = config.axis;
        const rank = inShape.length;
        if (!(axis === -1 || axis === rank - 1 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === rank - 1)))) {
          throw new AdvcorrectError('ERR_UNSUPPORTED', `BatchNormalization layer '${layer.name}' normalises axis ${JSON.stringify(axis)}; only the last (channel) axis is supported`);
        }
        steps.push({ ...base, kind: 'bn', activation: 'linear', epsilon: Number(config.epsilon ?? 1e-3) });
        break;
      }
      case 'Add':
        steps.push({ ...base, kind: 'add', activation: 'linear' });
        break;
      case 'LeakyReLU':
        steps.push({ ...base, kind: 'leakyrelu', activation: 'linear', alpha: Number(config.alpha ?? 0.3) });
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        requireChannelsLast();
        if (config.padding !== 'valid') throw new AdvcorrectError('ERR_UNSUPPORTED', `${className} layer '${layer.name}' uses padding '${String(config.padding)}'; only valid is supported`);
        const size = pair(config.poolSize, 'pool size', layer.name);
        const pool = { size, strides: pair(config.strides ?? size, 'strides', layer.name) };
        steps.push({ ...base, kind: className === 'MaxPooling2D' ? 'maxpool' : 'avgpool', activation: 'linear', pool });
        break;
      }
      case 'Concatenate':
        if (config.axis !== -1 && config.axis !== inShape.length - 1) {
          throw new AdvcorrectError('ERR_UNSUPPORTED', `Concatenate layer '${layer.name}' joins axis ${String(config.axis)}; only the last (channel) axis is supported`);
        }
        steps.push({ ...base, kind: 'concat', activation: 'linear' });
        break;
      case 'GlobalAveragePooling2D':
        requireChannelsLast();
        steps.push({ ...base, kind: 'gap', activation: 'linear' });
        break;
      default:
        throw new AdvcorrectError(
          'ERR_UNSUPPORTED',
          `layer '${layer.name}' of type ${className} is not supported by the gradient engine ` +
            '(supported: Dense, Conv2D, ReLU, LeakyReLU, Activation relu/linear/sigmoid/tanh, Flatten, ZeroPadding2D, BatchNormalization, ' +
            'Add, Concatenate, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Dropout)',
        );
    }
    if (className !== 'Add' && className !== 'Concatenate' && inputs.length !== 1) {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${layer.name}' has ${inputs.length} inputs`);
    }
  }
  const outputSymbolic = model.outputs[0] as unknown as SymbolicLike;
  const outputSlot = slots.get(outputSymbolic.id);
  if (outputSlot === undefined) throw new AdvcorrectError('ERR_UNSUPPORTED', 'the model output could not be traced back to its input');
  fuseZeroPadding(steps, outputSlot);
  const inputShape = input.shape.slice(1).map((d) => {
    if (d === null) throw new AdvcorrectError('ERR_UNSUPPORTED', 'the model input shape must be fully known');
    return d;
  });
  const outShape = outputSymbolic.shape;
  if (outShape.length !== 2 || outShape[1] === null) {
    throw new AdvcorrectError('ERR_UNSUPPORTED', `the model output must be [batch, classes] logits, got shape ${JSON.stringify(outShape)}`);
  }
  const graph: ModelGraph = {
    steps,
    slotCount,
    inputSlot: 0,
    outputSlot,
    inputShape,
    inputSize: inputShape.reduce((a, b) => a * b, 1),
    numClasses: outShape[1],
  };
  cache.set(model, graph);
  return graph;
}

/**
 * Folds a ZeroPadding2D whose only consumer is a 'valid' Conv2D into that conv's padding: the
 * same function, without materialising the padded tensor forward or slicing it backward.
 */
function fuseZeroPadding(steps: GraphStep[], outputSlot: number): void {
  const consumers = new Map<number, GraphStep[]>();
  for (const step of steps) for (const slot of step.inputs) consumers.set(slot, [...(consumers.get(slot) ?? []), step]);
  const removed = new Set<GraphStep>();
  for (const pad of steps) {
    if (pad.kind !== 'zeropad' || pad.output === outputSlot) continue;
    const users = consumers.get(pad.output) ?? [];
    if (users.length !== 1) continue;
    const conv = users[0];
    if (conv.kind !== 'conv2d' || conv.conv?.padding !== 'valid') continue;
    const [[top, bottom], [left, right]] = pad.padding as [[number, number], [number, number]];
    conv.conv = { ...conv.conv, padding: { top, bottom, left, right } };
    conv.inputs = [pad.inputs[0]];
    removed.add(pad);
  }
  if (removed.size === 0) return;
  const kept = steps.filter((step) => !removed.has(step));
  steps.length = 0;
  kept.forEach((step, k) => {
    step.index = k;
    steps.push(step);
  });
}

/** The `pad` argument of tf.conv2d / tf.conv2dTranspose for a spec. */
export function tfPadding(spec: Conv2DSpec): 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]] {
  const p = spec.padding;
  if (typeof p === 'string') return p;
  if (p.top === p.bottom && p.left === p.right && p.top === p.left) return p.top;
  return [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]];
}

/** Weight tensors to use instead of the model's variables, keyed `${layer}/${name}`. */
export type WeightOverrides = Map<string, tf.Tensor>;

function weightOf(step: GraphStep, name: string, overrides?: WeightOverrides): tf.Tensor | undefined {
  const o = overrides?.get(`${step.layer}/${name}`);
  if (o) return o;
  return step.weights.get(name)?.read();
}

/** For each step: its pre-activation (Dense/Conv2D with relu) or undefined. */
export interface ForwardTrace {
  /** Tensor per slot (slot 0 = input). */
  values: tf.Tensor[];
}

/** Conv2D without bias/activation as a tf op. */
export function convOp(x: tf.Tensor4D, kernel: tf.Tensor4D, spec: Conv2DSpec): tf.Tensor4D {
  const [dh, dw] = spec.dilation;
  if (dh === 1 && dw === 1) return tf.conv2d(x, kernel, spec.strides, tfPadding(spec), 'NHWC', spec.dilation);
  // tfjs has no gradients for dilated conv2d: convolve with the kernel spread out by zeros instead
  // (pad/reshape/slice, all differentiable), the same function.
  const [kh, kw, ci, co] = kernel.shape;
  const spread = tf.reshape(tf.pad(tf.reshape(kernel, [kh, 1, kw, 1, ci, co]), [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]]), [kh * dh, kw * dw, ci, co]);
  const dilated = tf.slice(spread, [0, 0, 0, 0], [(kh - 1) * dh + 1, (kw - 1) * dw + 1, ci, co]) as tf.Tensor4D;
  return tf.conv2d(x, dilated, spec.strides, tfPadding(spec), 'NHWC', 1);
}

/**
 * Runs the graph with tf ops. Returns the tensor of every slot (caller disposes, or runs inside
 * tf.tidy). `overrides` replaces weights (used to differentiate with respect to them).
 */
export function forwardGraph(graph: ModelGraph, x: tf.Tensor, overrides?: WeightOverrides): tf.Tensor[] {
  const values: tf.Tensor[] = new Array(graph.slotCount);
  values[graph.inputSlot] = x;
  for (const step of graph.steps) {
    const a = values[step.inputs[0]];
    let y: tf.Tensor;
    switch (step.kind) {
      case 'dense': {
        y = tf.matMul(a as tf.Tensor2D, weightOf(step, 'kernel', overrides) as tf.Tensor2D);
        const bias = weightOf(step, 'bias', overrides);
        if (bias) y = tf.add(y, bias);
        break;
      }
      case 'conv2d': {
        y = convOp(a as tf.Tensor4D, weightOf(step, 'kernel', overrides) as tf.Tensor4D, step.conv as Conv2DSpec);
        const bias = weightOf(step, 'bias', overrides);
        if (bias) y = tf.add(y, bias);
        break;
      }
      case 'relu':
        y = tf.relu(a);
        break;
      case 'identity':
        y = a;
        break;
      case 'flatten':
        y = tf.reshape(a, [a.shape[0], -1]);
        break;
      case 'zeropad': {
        const p = step.padding as [[number, number], [number, number]];
        y = tf.pad(a, [[0, 0], p[0], p[1], [0, 0]]);
        break;
      }
      case 'bn': {
        const { scale, shift } = bnAffine(step, overrides);
        y = tf.add(tf.mul(a, scale), shift);
        break;
      }
      case 'add':
        y = step.inputs.length === 1 ? a : tf.addN(step.inputs.map((s) => values[s]));
        break;
      case 'gap':
        y = tf.mean(a, [1, 2]);
        break;
      case 'leakyrelu':
      case 'sigmoid':
      case 'tanh':
      case 'maxpool':
      case 'avgpool':
        y = parameterFreeOp(step)(a);
        break;
      case 'concat':
        y = tf.concat(step.inputs.map((s) => values[s]), -1);
        break;
    }
    if (step.activation === 'relu') y = tf.relu(y);
    values[step.output] = y;
  }
  return values;
}

/** The tf op of a parameter-free single-input step (activations and pooling). */
function parameterFreeOp(step: GraphStep): (x: tf.Tensor) => tf.Tensor {
  const pool = step.pool;
  switch (step.kind) {
    case 'leakyrelu': return (x) => tf.leakyRelu(x, step.alpha ?? 0.3);
    case 'sigmoid': return (x) => tf.sigmoid(x);
    case 'tanh': return (x) => tf.tanh(x);
    case 'maxpool': return (x) => tf.maxPool(x as tf.Tensor4D, pool!.size, pool!.strides, 'valid');
    case 'avgpool': return (x) => tf.avgPool(x as tf.Tensor4D, pool!.size, pool!.strides, 'valid');
    default: throw new AdvcorrectError('ERR_UNSUPPORTED', `step ${step.kind} has parameters`);
  }
}

/** BatchNorm in inference as y = x·scale + shift, scale = γ/√(var+ε), shift = β − mean·scale. */
export function bnAffine(step: GraphStep, overrides?: WeightOverrides): { scale: tf.Tensor; shift: tf.Tensor; invStd: tf.Tensor } {
  const mean = weightOf(step, 'moving_mean', overrides);
  const variance = weightOf(step, 'moving_variance', overrides);
  if (!mean || !variance) throw new AdvcorrectError('ERR_UNSUPPORTED', `BatchNormalization layer '${step.layer}' has no moving statistics`);
  const gamma = weightOf(step, 'gamma', overrides);
  const beta = weightOf(step, 'beta', overrides);
  const invStd = tf.rsqrt(tf.add(variance, step.epsilon ?? 1e-3));
  const scale = gamma ? tf.mul(gamma, invStd) : invStd;
  let shift = tf.neg(tf.mul(mean, scale));
  if (beta) shift = tf.add(shift, beta);
  return { scale, shift, invStd };
}

// ---------------------------------------------------------------------------------------------
// Gradient engine
// ---------------------------------------------------------------------------------------------

/** Common options of the batched functions here. */
export interface BatchOptions {
  /** Examples per forward/backward pass (default 64). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Called after each batch with examples done and total. */
  onProgress?: (done: number, total: number) => void;
}

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

const DEFAULT_BATCH = 64;

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function checkBatchSize(batchSize: unknown): number {
  if (batchSize === undefined) return DEFAULT_BATCH;
  if (typeof batchSize !== 'number' || !Number.isInteger(batchSize) || batchSize <= 0) {
    throw new RangeError('batchSize must be a positive integer');
  }
  return batchSize;
}

/** Validates images/labels against the model; returns the example count. */
function checkExamples(graph: Pick<ModelGraph, 'inputShape' | 'inputSize' | 'numClasses'>, images: unknown, labels: unknown, requireLabels: boolean): number {
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

function batchTensor(graph: Pick<ModelGraph, 'inputShape' | 'inputSize'>, images: Float32Array, start: number, end: number): tf.Tensor {
  return tf.tensor(images.subarray(start * graph.inputSize, end * graph.inputSize), [end - start, ...graph.inputShape], 'float32');
}

/** Zero padding (top, left) the conv applies to its input, as tfjs computes it for 'same'. */
function padOffsets(inH: number, inW: number, outH: number, outW: number, spec: Conv2DSpec): [number, number] {
  if (spec.padding === 'valid') return [0, 0];
  if (typeof spec.padding === 'object') return [spec.padding.top, spec.padding.left];
  const effH = (spec.kernelH - 1) * spec.dilation[0] + 1;
  const effW = (spec.kernelW - 1) * spec.dilation[1] + 1;
  const padH = Math.max(0, (outH - 1) * spec.strides[0] + effH - inH);
  const padW = Math.max(0, (outW - 1) * spec.strides[1] + effW - inW);
  return [Math.floor(padH / 2), Math.floor(padW / 2)];
}

/** Seeded backward pass: gradient of Σ_b ⟨seed_b, f(x_b)⟩ w.r.t. the output of every step ≥ `stopAt`. Returns, per step index, the gradient w.r.t. its pre-activation. */
function backwardGraph(graph: ModelGraph, values: tf.Tensor[], seed: tf.Tensor, stopAt: number, wanted: Set<number>): Map<number, tf.Tensor> {
  const grads: Array<tf.Tensor | undefined> = new Array(graph.slotCount);
  grads[graph.outputSlot] = seed;
  const out = new Map<number, tf.Tensor>();
  const accumulate = (slot: number, g: tf.Tensor): void => {
    const prev = grads[slot];
    grads[slot] = prev ? tf.add(prev, g) : g;
  };
  for (let k = graph.steps.length - 1; k >= stopAt; k--) {
    const step = graph.steps[k];
    let g = grads[step.output];
    if (!g) continue;
    if (step.activation === 'relu') g = tf.mul(g, tf.step(values[step.output]));
    if (wanted.has(k)) out.set(k, g);
    if (k === stopAt) continue;
    const a = values[step.inputs[0]];
    switch (step.kind) {
      case 'dense':
        accumulate(step.inputs[0], tf.matMul(g as tf.Tensor2D, step.weights.get('kernel')!.read() as tf.Tensor2D, false, true));
        break;
      case 'conv2d': {
        const spec = step.conv as Conv2DSpec;
        const kernel = step.weights.get('kernel')!.read() as tf.Tensor4D;
        let dIn: tf.Tensor;
        if (spec.dilation[0] === 1 && spec.dilation[1] === 1) {
          dIn = tf.conv2dTranspose(g as tf.Tensor4D, kernel, a.shape as [number, number, number, number], spec.strides, tfPadding(spec));
        } else {
          dIn = tf.grad((x: tf.Tensor) => convOp(x as tf.Tensor4D, kernel, spec))(a, g);
        }
        accumulate(step.inputs[0], dIn);
        break;
      }
      case 'relu':
        accumulate(step.inputs[0], tf.mul(g, tf.step(values[step.output])));
        break;
      case 'identity':
        accumulate(step.inputs[0], g);
        break;
      case 'flatten':
        accumulate(step.inputs[0], tf.reshape(g, a.shape));
        break;
      case 'zeropad': {
        const p = step.padding as [[number, number], [number, number]];
        accumulate(step.inputs[0], tf.slice(g, [0, p[0][0], p[1][0], 0], a.shape));
        break;
      }
      case 'bn':
        accumulate(step.inputs[0], tf.mul(g, bnAffine(step).scale));
        break;
      case 'add':
        for (const slot of step.inputs) accumulate(slot, g);
        break;
      case 'gap': {
        const [b, h, w, c] = a.shape;
        accumulate(step.inputs[0], tf.broadcastTo(tf.div(tf.reshape(g, [b, 1, 1, c]), h * w), a.shape));
        break;
      }
      case 'leakyrelu':
      case 'sigmoid':
      case 'tanh':
      case 'maxpool':
      case 'avgpool':
        // vector-Jacobian product of the op itself (tfjs' own gradients)
        accumulate(step.inputs[0], tf.grad(parameterFreeOp(step))(a, g));
        break;
      case 'concat': {
        const sizes = step.inputs.map((s) => values[s].shape[values[s].rank - 1] as number);
        tf.split(g, sizes, -1).forEach((part, i) => accumulate(step.inputs[i], part));
        break;
      }
    }
  }
  return out;
}

/** A parametric step of the view, with where its tensors go in the flat vector. */
interface ViewStep {
  step: GraphStep;
  /** Offsets in the flat vector, -1 when the tensor is not in the view / absent. */
  kernel: number;
  bias: number;
  gamma: number;
  beta: number;
  /** The step's [offset, size] ranges in the flat vector, ascending. */
  regions: Array<[number, number]>;
}

function viewSteps(graph: ModelGraph, view: ParameterView): ViewStep[] {
  const result: ViewStep[] = [];
  const covered = new Set<string>();
  for (const step of graph.steps) {
    const entries = view.entries.filter((e) => e.layer === step.layer);
    if (entries.length === 0) continue;
    if (step.kind !== 'dense' && step.kind !== 'conv2d' && step.kind !== 'bn') {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${step.layer}' (${step.className}) has trainable parameters the gradient engine does not know`);
    }
    const offset = (name: string): number => entries.find((e) => e.name === name)?.offset ?? -1;
    for (const e of entries) {
      const allowed = step.kind === 'bn' ? ['gamma', 'beta'] : ['kernel', 'bias'];
      if (!allowed.includes(e.name)) {
        throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${step.layer}': trainable tensor '${e.name}' is not supported`);
      }
      covered.add(`${e.layer}/${e.name}`);
    }
    const regions = entries.map((e) => [e.offset, e.size] as [number, number]).sort((x, y) => x[0] - y[0]);
    result.push({ step, kernel: offset('kernel'), bias: offset('bias'), gamma: offset('gamma'), beta: offset('beta'), regions });
  }
  for (const e of view.entries) {
    if (!covered.has(`${e.layer}/${e.name}`)) {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `parameter ${e.layer}/${e.name} is not reachable by the gradient engine`);
    }
  }
  // Ascending offsets, so that sparse rows come out sorted step by step.
  return result.sort((x, y) => x.regions[0][0] - y.regions[0][0]);
}

/** Per-batch data a parametric step needs to form per-example weight gradients. */
interface StepInputs {
  /** Dense/Conv2D: the layer input; BN: the normalised input x̂. */
  a: Float32Array;
  inShape: number[];
  outShape: number[];
  pad: [number, number];
  /** The addon's kernels when they are used, with the conv geometry of one example. */
  native?: NativeKernels;
  convShape?: Int32Array;
}

/** The part of the addon's `kernels` object used here (see native/binding/kernels_binding.cpp). */
interface NativeKernels {
  threadCount(): number;
  setThreadCount(n: number): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array): void;
  batchMatMul(a: Float32Array, b: Float32Array, c: Float32Array, batchA: number, batchB: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void;
}

let nativeKernelsCache: NativeKernels | null | undefined;

/** The addon's tensor kernels, or null when the addon is not built/loadable. */
function nativeKernels(): NativeKernels | null {
  if (nativeKernelsCache !== undefined) return nativeKernelsCache;
  try {
    const k = loadNative().kernels as NativeKernels | undefined;
    nativeKernelsCache = k && typeof k.conv2dBackpropFilter === 'function' && typeof k.batchMatMul === 'function' ? k : null;
  } catch {
    nativeKernelsCache = null;
  }
  return nativeKernelsCache;
}

/** Zeroes the regions of `row` that belong to this step's tensors. */
function clearStep(vs: ViewStep, row: Float32Array, inputs: StepInputs): void {
  const { inShape, outShape } = inputs;
  const out = outShape[outShape.length - 1];
  if (vs.step.kind === 'dense') {
    if (vs.kernel >= 0) row.fill(0, vs.kernel, vs.kernel + inShape[1] * out);
  } else if (vs.step.kind === 'conv2d') {
    const spec = vs.step.conv as Conv2DSpec;
    if (vs.kernel >= 0) row.fill(0, vs.kernel, vs.kernel + spec.kernelH * spec.kernelW * inShape[3] * out);
  } else if (vs.gamma >= 0) row.fill(0, vs.gamma, vs.gamma + out);
  if (vs.bias >= 0) row.fill(0, vs.bias, vs.bias + out);
  if (vs.beta >= 0) row.fill(0, vs.beta, vs.beta + out);
}

/**
 * Writes the per-example gradient of the seeded scalar for example `b` into `row`, overwriting
 * every position of this step's tensors (the row may start uninitialised). `d` is the gradient
 * w.r.t. the step's pre-activation, or undefined when the seed does not reach the step.
 */
function writeExampleGradient(vs: ViewStep, inputs: StepInputs, d: Float32Array | undefined, b: number, row: Float32Array): void {
  const { step } = vs;
  const { a, inShape, outShape } = inputs;
  if (!d || step.kind !== 'dense') clearStep(vs, row, inputs);
  if (!d) return;
  if (step.kind === 'dense') {
    const nIn = inShape[1];
    const nOut = outShape[1];
    const aOff = b * nIn;
    const dOff = b * nOut;
    if (vs.kernel >= 0 && inputs.native) {
      // Outer product a_b ⊗ d_b as an [nIn×1]·[1×nOut] GEMM written straight into the row.
      inputs.native.batchMatMul(
        a.subarray(aOff, aOff + nIn), d.subarray(dOff, dOff + nOut), row.subarray(vs.kernel, vs.kernel + nIn * nOut),
        1, 1, nIn, 1, nOut, false, false,
      );
    } else if (vs.kernel >= 0) {
      for (let p = 0; p < nIn; p++) {
        const ap = a[aOff + p];
        const base = vs.kernel + p * nOut;
        if (ap === 0) {
          row.fill(0, base, base + nOut);
          continue;
        }
        for (let q = 0; q < nOut; q++) row[base + q] = ap * d[dOff + q];
      }
    }
    if (vs.bias >= 0) for (let q = 0; q < nOut; q++) row[vs.bias + q] = d[dOff + q];
    return;
  }
  if (step.kind === 'conv2d') {
    const spec = step.conv as Conv2DSpec;
    const [, H, W, cin] = inShape;
    const [, Ho, Wo, cout] = outShape;
    const [padT, padL] = inputs.pad;
    const hasBias = vs.bias >= 0;
    const [sH, sW] = spec.strides;
    const [dH, dW] = spec.dilation;
    const kH = spec.kernelH;
    const kW = spec.kernelW;
    const aBase = b * H * W * cin;
    const dBase = b * Ho * Wo * cout;
    let hasKernel = vs.kernel >= 0;
    if (hasKernel && inputs.native) {
      // Σ_positions patch ⊗ δ is the filter gradient of a batch of one: im2col + GEMM natively.
      const size = kH * kW * cin * cout;
      inputs.native.conv2dBackpropFilter(
        a.subarray(aBase, aBase + H * W * cin), d.subarray(dBase, dBase + Ho * Wo * cout),
        row.subarray(vs.kernel, vs.kernel + size), inputs.convShape as Int32Array,
      );
      hasKernel = false;
      if (!hasBias) return;
    }
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        const dp = dBase + (oh * Wo + ow) * cout;
        let any = false;
        for (let c = 0; c < cout; c++) {
          if (d[dp + c] !== 0) {
            any = true;
            break;
          }
        }
        if (!any) continue;
        if (hasBias) for (let c = 0; c < cout; c++) row[vs.bias + c] += d[dp + c];
        if (!hasKernel) continue;
        for (let kh = 0; kh < kH; kh++) {
          const ih = oh * sH - padT + kh * dH;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < kW; kw++) {
            const iw = ow * sW - padL + kw * dW;
            if (iw < 0 || iw >= W) continue;
            const ap = aBase + (ih * W + iw) * cin;
            const kp = vs.kernel + (kh * kW + kw) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const x = a[ap + ci];
              if (x === 0) continue;
              const base = kp + ci * cout;
              for (let c = 0; c < cout; c++) row[base + c] += x * d[dp + c];
            }
          }
        }
      }
    }
    return;
  }
  // BatchNormalization: γ' = Σ_positions d·x̂, β' = Σ_positions d, per channel.
  const channels = outShape[outShape.length - 1];
  const positions = outShape.slice(1, -1).reduce((x, y) => x * y, 1);
  const base = b * positions * channels;
  for (let p = 0; p < positions; p++) {
    const off = base + p * channels;
    for (let c = 0; c < channels; c++) {
      const dv = d[off + c];
      if (dv === 0) continue;
      if (vs.gamma >= 0) row[vs.gamma + c] += dv * a[off + c];
      if (vs.beta >= 0) row[vs.beta + c] += dv;
    }
  }
}

function checkView(model: LayersModel, view: unknown): ParameterView {
  if (!(view instanceof ParameterView)) throw new TypeError('view must be a ParameterView');
  if (view.model !== model) throw new RangeError('view was made for another model');
  return view;
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

/**
 * A Float32Array whose contents are not zeroed (Buffer.allocUnsafe memory): the caller writes
 * every element. Saves the zero-fill of a row of view.size floats that is overwritten anyway.
 */
function uninitialisedFloat32(length: number): Float32Array {
  const bytes = Buffer.allocUnsafeSlow(length * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, length);
}

/**
 * Appends the nonzero entries of row[from, to) to index/value from position k (arrays at least
 * view.size long) and returns the new count. Branch-free: every entry is written at position k and
 * k advances only past nonzeros (about twice as fast as an if on rows of 20 % density).
 */
function compressRange(row: Float32Array, from: number, to: number, index: Int32Array, value: Float32Array, k: number): number {
  for (let i = from; i < to; i++) {
    const v = row[i];
    index[k] = i;
    value[k] = v;
    k += +(v !== 0);
  }
  return k;
}

/**
 * Sparse per-example gradient of a Dense step: kernel entries a_p·d_q for the nonzero a_p and d_q
 * (p-major, so indices ascend), then the bias entries d_q. Products that underflow to 0 are dropped.
 */
function appendDenseSparse(
  vs: ViewStep,
  inputs: StepInputs,
  d: Float32Array,
  b: number,
  index: Int32Array,
  value: Float32Array,
  k: number,
  nonzero: Int32Array,
): number {
  const nIn = inputs.inShape[1];
  const nOut = inputs.outShape[1];
  const a = inputs.a;
  const aOff = b * nIn;
  const dOff = b * nOut;
  let count = 0;
  for (let q = 0; q < nOut; q++) if (d[dOff + q] !== 0) nonzero[count++] = q;
  if (vs.kernel >= 0 && count > 0) {
    for (let p = 0; p < nIn; p++) {
      const ap = a[aOff + p];
      if (ap === 0) continue;
      const base = vs.kernel + p * nOut;
      for (let t = 0; t < count; t++) {
        const q = nonzero[t];
        const v = ap * d[dOff + q];
        index[k] = base + q;
        value[k] = v;
        k += +(v !== 0);
      }
    }
  }
  if (vs.bias >= 0) {
    for (let t = 0; t < count; t++) {
      const q = nonzero[t];
      index[k] = vs.bias + q;
      value[k++] = d[dOff + q];
    }
  }
  return k;
}

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

/** Input/output shapes of any single-input classifier (without requiring supported layers). */
export function compileInputs(model: LayersModel): Pick<ModelGraph, 'inputShape' | 'inputSize' | 'numClasses'> {
  if (model === null || typeof model !== 'object' || !Array.isArray((model as LayersModel).inputs)) {
    throw new TypeError('model must be a tf.LayersModel');
  }
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new AdvcorrectError('ERR_UNSUPPORTED', 'only models with one input and one output are supported');
  }
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  if (inputShape.some((d) => d === null)) throw new AdvcorrectError('ERR_UNSUPPORTED', 'the model input shape must be fully known');
  const outShape = model.outputs[0].shape;
  if (outShape.length !== 2 || outShape[1] === null) {
    throw new AdvcorrectError('ERR_UNSUPPORTED', `the model output must be [batch, classes] logits, got shape ${JSON.stringify(outShape)}`);
  }
  return { inputShape, inputSize: inputShape.reduce((a, b) => a * b, 1), numClasses: outShape[1] as number };
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
