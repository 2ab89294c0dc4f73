/**
 * tfjs → ONNX: writes a (corrected) model back into the ONNX file it was imported from. The
 * original bytes are re-encoded with new values for the initializers bound to layer weights;
 * every other field (nodes, names, opsets, metadata, the other initializers) is copied unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../../errors.js';
import { writeFileAtomic } from '../../util/files.js';
import type { OnnxSource, OnnxWeightBinding } from './import.js';
import { concatBytes, decodeModel, decodeNode, decodeTensor, GRAPH_INITIALIZER_FIELD, lengthDelimited, MODEL_GRAPH_FIELD, readFields, replaceTensorData } from './proto.js';

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

/** A new float TensorProto: name, dims, data_type FLOAT, raw_data. */
function newTensor(name: string, dims: number[], values: Float32Array): Uint8Array {
  const parts: Uint8Array[] = [lengthDelimited(8, new TextEncoder().encode(name))];
  for (const d of dims) parts.push(varintField(1, d));
  parts.push(varintField(2, 1));
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, k) => view.setFloat32(4 * k, v, true));
  parts.push(lengthDelimited(9, raw));
  return concatBytes(parts);
}

function varintField(field: number, value: number): Uint8Array {
  const out: number[] = [];
  let v = field * 8;
  for (let pass = 0; pass < 2; pass++) {
    while (v >= 0x80) {
      out.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    out.push(v);
    v = value;
  }
  return new Uint8Array(out);
}

/**
 * The ONNX file bytes of `source` with the bound initializers replaced by `values`. A key of `values`
 * that names the output of an Identity of an initializer (see OnnxWeightBinding.identityOf) unties
 * the two: the Identity node is dropped and an initializer of that name added.
 */
export function encodeWithInitializers(source: OnnxSource, values: Map<string, Float32Array>): Uint8Array {
  const what = source.file;
  const untie = new Map(source.bindings.filter((b) => b.identityOf && values.has(b.initializer)).map((b) => [b.initializer, b.identityOf as string]));
  const dimsOf = new Map<string, number[]>();
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
      if (g.field === 1 && g.wire === 2 && g.bytes && untie.size) {
        const node = decodeNode(g.bytes, what);
        if (node.opType === 'Identity' && untie.has(node.outputs[0])) continue;
      }
      if (g.field === GRAPH_INITIALIZER_FIELD && g.wire === 2 && g.bytes) {
        const tensor = decodeTensor(g.bytes, what);
        dimsOf.set(tensor.name, tensor.dims);
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
    for (const [alias, original] of untie) {
      graphParts.push(lengthDelimited(GRAPH_INITIALIZER_FIELD, newTensor(alias, dimsOf.get(original) ?? [], values.get(alias) as Float32Array)));
      replaced.add(alias);
    }
    modelParts.push(lengthDelimited(MODEL_GRAPH_FIELD, concatBytes(graphParts)));
  }
  const missing = [...values.keys()].filter((name) => !replaced.has(name));
  if (missing.length) throw new AdvcorrectError('ERR_MODEL', `${what} has no initializer ${missing.join(', ')}`);
  return concatBytes(modelParts);
}

function originalValues(source: OnnxSource, name: string): Float32Array | undefined {
  const t = decodeModel(source.bytes, source.file).graph.initializers.get(name);
  return t && t.values instanceof Float32Array ? t.values : undefined;
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
  const parts = new Map<string, Array<{ start: number; value: Float32Array }>>();
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
    const value = toOnnx(binding, weights[index]);
    if (!binding.outSlice) values.set(binding.initializer, value);
    else parts.set(binding.initializer, [...(parts.get(binding.initializer) ?? []), { start: binding.outSlice[0], value }]);
  }
  // A grouped Conv's groups are output-channel blocks of one initializer (OIHW: contiguous).
  for (const [name, blocks] of parts) {
    blocks.sort((a, b) => a.start - b.start);
    const whole = new Float32Array(blocks.reduce((n, b) => n + b.value.length, 0));
    let offset = 0;
    for (const b of blocks) {
      whole.set(b.value, offset);
      offset += b.value.length;
    }
    values.set(name, whole);
  }
  // Weights the exporter had de-duplicated into one initializer stay shared while they are equal.
  for (const binding of base.onnx.bindings) {
    if (!binding.identityOf) continue;
    const mine = values.get(binding.initializer) as Float32Array;
    const theirs = values.get(binding.identityOf) ?? originalValues(base.onnx, binding.identityOf);
    if (theirs && mine.length === theirs.length && mine.every((v, k) => Object.is(v, theirs[k]))) values.delete(binding.initializer);
  }
  await writeFileAtomic(file, encodeWithInitializers(base.onnx, values));
}
