/**
 * tfjs → ONNX: writes a (corrected) model back into the ONNX file it was imported from. The
 * original bytes are re-encoded with new values for the initializers bound to layer weights;
 * every other field (nodes, names, opsets, metadata, the other initializers) is copied unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../../errors.js';
import { writeFileAtomic } from '../../data/files.js';
import type { OnnxSource, OnnxWeightBinding } from './import.js';
import { concatBytes, decodeTensor, GRAPH_INITIALIZER_FIELD, lengthDelimited, MODEL_GRAPH_FIELD, readFields, replaceTensorData } from './proto.js';

/** ONNX-layout values of one bound weight (inverse of the import's transposes and row permutation). */
function toOnnx(binding: OnnxWeightBinding, value: tf.Tensor): Float32Array {
  return tf.tidy(() => {
    let t = value;
    if (binding.layout === 'conv') t = tf.transpose(value, [3, 2, 0, 1]);
    else if (binding.layout === 'gemm' || binding.layout === 'gemm-t') {
      const [nin, nout] = value.shape;
      if (binding.chw) {
        const [c, h, w] = binding.chw;
        t = tf.reshape(tf.transpose(tf.reshape(t, [h, w, c, nout]), [2, 0, 1, 3]), [nin, nout]);
      }
      if (binding.layout === 'gemm-t') t = tf.transpose(t);
    }
    return Float32Array.from(t.dataSync() as Float32Array);
  });
}

/** The ONNX file bytes of `source` with the bound initializers replaced by `values`. */
export function encodeWithInitializers(source: OnnxSource, values: Map<string, Float32Array>): Uint8Array {
  const what = source.file;
  const modelParts: Uint8Array[] = [];
  const replaced = new Set<string>();
  for (const f of readFields(source.bytes, what)) {
    if (f.field !== MODEL_GRAPH_FIELD || f.wire !== 2 || !f.bytes) {
      modelParts.push(source.bytes.subarray(f.start, f.end));
      continue;
    }
    const graph = f.bytes;
    const graphParts: Uint8Array[] = [];
    for (const g of readFields(graph, what)) {
      if (g.field === GRAPH_INITIALIZER_FIELD && g.wire === 2 && g.bytes) {
        const tensor = decodeTensor(g.bytes, what);
        const next = values.get(tensor.name);
        if (next) {
          const count = tensor.dims.reduce((a, b) => a * b, 1);
          if (next.length !== count) throw new AdvcorrectError('ERR_MODEL', `initializer '${tensor.name}' has ${count} values, the model gives ${next.length}`);
          graphParts.push(lengthDelimited(GRAPH_INITIALIZER_FIELD, replaceTensorData(g.bytes, next, what)));
          replaced.add(tensor.name);
          continue;
        }
      }
      graphParts.push(graph.subarray(g.start, g.end));
    }
    modelParts.push(lengthDelimited(MODEL_GRAPH_FIELD, concatBytes(graphParts)));
  }
  const missing = [...values.keys()].filter((name) => !replaced.has(name));
  if (missing.length) throw new AdvcorrectError('ERR_MODEL', `${what} has no initializer ${missing.join(', ')}`);
  return concatBytes(modelParts);
}

/**
 * Writes `model` (the imported model or a corrected copy with the same layer names) as an ONNX file:
 * the graph of `base` (a model loaded from .onnx) with the layer weights as new initializer values,
 * in ONNX layouts (NCHW/OIHW kernels, Gemm weights as stored, C,H,W row order after a flatten).
 * Input normalisation and a final Softmax stay in the graph as they were. Written atomically.
 */
export async function exportOnnx(base: { onnx?: OnnxSource }, model: tfl.LayersModel, file: string): Promise<void> {
  if (base === null || typeof base !== 'object' || !base.onnx) throw new TypeError('base must be a model loaded from an ONNX file');
  if (!(model instanceof tfl.LayersModel)) throw new TypeError('model must be a tfjs LayersModel');
  if (typeof file !== 'string' || file === '') throw new TypeError('path must be a non-empty string');
  const values = new Map<string, Float32Array>();
  for (const binding of base.onnx.bindings) {
    let layer: tfl.layers.Layer;
    try {
      layer = model.getLayer(binding.layer);
    } catch {
      throw new AdvcorrectError('ERR_MODEL', `the model has no layer ${binding.layer}: it is not the network imported from ${base.onnx.file}`);
    }
    const index = layer.weights.findIndex((w) => (w.originalName ?? w.name).split('/').pop()!.replace(/_\d+$/, '') === binding.weight);
    if (index < 0) throw new AdvcorrectError('ERR_MODEL', `layer ${binding.layer} has no ${binding.weight}: it is not the network imported from ${base.onnx.file}`);
    const weights = layer.getWeights();
    values.set(binding.initializer, toOnnx(binding, weights[index]));
  }
  await writeFileAtomic(file, encodeWithInitializers(base.onnx, values));
}
