/**
 * The forward pass over a compiled graph (graph.ts) with tf ops: the tensor of every slot, with
 * optional weight overrides to differentiate with respect to the weights; and the op pieces the
 * backward pass reuses (convOp, bnAffine, parameterFreeOp).
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdvcorrectError } from '../errors.js';
import { tfPadding, type Conv2DSpec, type GraphStep, type ModelGraph } from './graph.js';

/** Weight tensors to use instead of the model's variables, keyed `${layer}/${name}`. */
export type WeightOverrides = Map<string, tf.Tensor>;

function weightOf(step: GraphStep, name: string, overrides?: WeightOverrides): tf.Tensor | undefined {
  const o = overrides?.get(`${step.layer}/${name}`);
  if (o) return o;
  return step.weights.get(name)?.read();
}

/** The tensors of a forward pass, one per slot (what {@link forwardGraph} returns, as an object). */
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
      case 'globalAvgPool':
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
export function parameterFreeOp(step: GraphStep): (x: tf.Tensor) => tf.Tensor {
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
