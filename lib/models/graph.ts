/**
 * The graph compiler: a LayersModel compiled into a list of steps that this package evaluates
 * with its own tf ops (forward.ts, backward.ts), so that the forward pass can keep every
 * activation and the backward pass can be seeded freely (rows.ts). Supported layers: InputLayer,
 * Dense, Conv2D (channels-last, any strides/dilation, valid or same padding), ReLU, LeakyReLU,
 * Activation (relu, linear, sigmoid, tanh), Flatten, ZeroPadding2D, BatchNormalization
 * (inference: fixed statistics), Add, Concatenate, MaxPooling2D, AveragePooling2D,
 * GlobalAveragePooling2D, Dropout (identity at inference). Anything else is refused with
 * ERR_UNSUPPORTED. Also here: {@link compileInputs}, the shapes of any single-input classifier.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../errors.js';

export type StepKind = 'dense' | 'conv2d' | 'relu' | 'identity' | 'flatten' | 'zeropad' | 'bn' | 'add' | 'globalAvgPool' | ElementwiseKind | 'maxpool' | 'avgpool' | 'concat';
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
        steps.push({ ...base, kind: 'globalAvgPool', activation: 'linear' });
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
