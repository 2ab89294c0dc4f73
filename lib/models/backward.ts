/**
 * The seeded backward pass over a compiled graph: from a seed at the logits, the gradient with
 * respect to the pre-activation of the wanted steps, for a whole batch at once (rows.ts forms the
 * per-example weight gradients from these and the kept activations).
 */
import * as tf from '@tensorflow/tfjs-core';
import { tfPadding, type Conv2DSpec, type ModelGraph } from './graph.js';
import { bnAffine, convOp, parameterFreeOp } from './forward.js';

/** Seeded backward pass: gradient of Σ_b ⟨seed_b, f(x_b)⟩ w.r.t. the output of every step ≥ `stopAt`. Returns, per step index, the gradient w.r.t. its pre-activation. */
export function backwardGraph(graph: ModelGraph, values: tf.Tensor[], seed: tf.Tensor, stopAt: number, wanted: Set<number>): Map<number, tf.Tensor> {
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
      case 'globalAvgPool': {
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
