import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';
import type { Normalization } from '../data/datasets.js';
import { readFileCapped, resolveInside, writeFileAtomic } from '../util/files.js';
import { ARCH_NAMES, ARCHITECTURES, buildModel, type ArchName } from './architectures.js';
import { checkFiniteArray, readNpz, writeNpz, type NpyArray } from './npz.js';
import { importOnnx, type OnnxSource } from './onnx/import.js';

/** A model ready for use, with what we know about its input space. */
export interface LoadedModel {
  model: tfl.LayersModel;
  arch?: ArchName;
  source: 'tfjs' | 'npz' | 'onnx';
  /** NHWC shape of one input, e.g. [28, 28, 1]. */
  inputShape: number[];
  numClasses: number;
  /** Mean/std normalisation the model expects on inputs in [0, 1], if any. */
  normalization?: Normalization;
  /** For source 'onnx': the file and where each weight goes, for {@link exportOnnx}. */
  onnx?: OnnxSource;
  /** What the import changed or left out that a user should know (e.g. a final Softmax dropped). */
  notices?: string[];
}

/** Metadata we keep in model.json's userDefinedMetadata. */
interface AdvcorrectMetadata {
  arch?: ArchName;
  normalization?: Normalization;
}

function metadataOf(model: tfl.LayersModel): AdvcorrectMetadata {
  const meta = (model.getUserDefinedMetadata() as { advcorrect?: AdvcorrectMetadata } | undefined)?.advcorrect;
  return meta ?? {};
}

function describe(model: tfl.LayersModel, source: LoadedModel['source'], meta: AdvcorrectMetadata): LoadedModel {
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  const outputShape = model.outputs[0].shape;
  return {
    model,
    ...(meta.arch ? { arch: meta.arch } : {}),
    source,
    inputShape,
    numClasses: outputShape[outputShape.length - 1] as number,
    ...(meta.normalization ? { normalization: meta.normalization } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// PyTorch .npz import / export

/** Parameter name of a tfjs weight in PyTorch's state_dict naming (layer name with '_' → '.'). */
function torchName(layerName: string, weightName: string): string {
  const module = layerName.replace(/_/g, '.');
  const param: Record<string, string> = {
    kernel: 'weight',
    bias: 'bias',
    gamma: 'weight',
    beta: 'bias',
    moving_mean: 'running_mean',
    moving_variance: 'running_var',
  };
  const short = weightName.split('/').pop() as string;
  const mapped = param[short];
  if (!mapped) throw new AdvcorrectError('ERR_MODEL', `no PyTorch name for weight ${weightName} of layer ${layerName}`);
  return `${module}.${mapped}`;
}

/**
 * For a Dense layer fed by a Flatten of an [H, W, C] tensor with C > 1, the spatial shape; PyTorch
 * flattened in C,H,W order, tfjs flattens in H,W,C order, so the kernel rows must be permuted.
 */
function flattenedShape(layer: tfl.layers.Layer): [number, number, number] | undefined {
  const inbound = (layer as unknown as { inboundNodes: Array<{ inboundLayers: tfl.layers.Layer[] }> }).inboundNodes[0]?.inboundLayers[0];
  if (!inbound || inbound.getClassName() !== 'Flatten') return undefined;
  const shape = (inbound.input as tfl.SymbolicTensor).shape;
  if (shape.length !== 4 || (shape[3] as number) === 1) return undefined;
  return [shape[1] as number, shape[2] as number, shape[3] as number];
}

/** tfjs value of a weight from the PyTorch array (transposes and the flatten permutation). */
function torchToTfjs(layer: tfl.layers.Layer, weightShape: number[], short: string, array: NpyArray, key: string): tf.Tensor {
  const values = Float32Array.from(array.data as ArrayLike<number>);
  const cls = layer.getClassName();
  const expect = (shape: number[]): void => {
    if (array.shape.length !== shape.length || array.shape.some((d, i) => d !== shape[i])) {
      throw new AdvcorrectError('ERR_MODEL', `${key} has shape [${array.shape.join(', ')}], layer ${layer.name} needs [${shape.join(', ')}] (PyTorch layout)`);
    }
  };
  if (short === 'kernel' && cls === 'Conv2D') {
    const [kh, kw, cin, cout] = weightShape;
    expect([cout, cin, kh, kw]);
    return tf.tidy(() => tf.transpose(tf.tensor4d(values, [cout, cin, kh, kw]), [2, 3, 1, 0]));
  }
  if (short === 'kernel' && cls === 'Dense') {
    const [nin, nout] = weightShape;
    expect([nout, nin]);
    const spatial = flattenedShape(layer);
    if (!spatial) return tf.tidy(() => tf.transpose(tf.tensor2d(values, [nout, nin])));
    const [h, w, c] = spatial;
    // PyTorch column (c·H + y)·W + x  →  tfjs row (y·W + x)·C + c
    return tf.tidy(() => tf.reshape(tf.transpose(tf.tensor4d(values, [nout, c, h, w]), [2, 3, 1, 0]), [nin, nout]));
  }
  expect(weightShape);
  return tf.tensor(values, weightShape);
}

/** PyTorch-layout array of a tfjs weight (inverse of torchToTfjs). */
function tfjsToTorch(layer: tfl.layers.Layer, value: tf.Tensor, short: string): NpyArray {
  const cls = layer.getClassName();
  return tf.tidy(() => {
    let t = value;
    if (short === 'kernel' && cls === 'Conv2D') t = tf.transpose(value, [3, 2, 0, 1]);
    else if (short === 'kernel' && cls === 'Dense') {
      const [nin, nout] = value.shape;
      const spatial = flattenedShape(layer);
      if (spatial) {
        const [h, w, c] = spatial;
        t = tf.reshape(tf.transpose(tf.reshape(value, [h, w, c, nout]), [3, 2, 0, 1]), [nout, nin]);
      } else t = tf.transpose(value);
    }
    return { dtype: 'float32', shape: t.shape.slice(), data: t.dataSync() as Float32Array };
  });
}

function isBatchNormStat(short: string): boolean {
  return short === 'moving_mean' || short === 'moving_variance';
}

export interface ImportNpzOptions {
  /** ResNet8's BatchNorm statistics; default: `<path without .npz>_bn_stats.npz`. */
  bnStats?: string;
  /** Input normalisation to record; default the architecture's (CIFAR-10's for resnet8), `null` for none. */
  normalization?: Normalization | null;
}

/**
 * Builds `arch` and fills it with PyTorch state_dict tensors from an .npz file: Conv2d
 * [out,in,kh,kw] → [kh,kw,in,out], Linear [out,in] → [in,out] with the rows of a Dense after a
 * Flatten permuted from C,H,W to H,W,C order, BatchNorm weight/bias → gamma/beta and
 * running_mean/running_var (from the separate _bn_stats.npz) → moving mean/variance.
 */
export async function importNpz(file: string, arch: ArchName, options: ImportNpzOptions = {}): Promise<LoadedModel> {
  if (typeof file !== 'string') throw new TypeError('path must be a string');
  if (!ARCH_NAMES.includes(arch)) throw new TypeError(`arch must be one of ${ARCH_NAMES.join(', ')}`);
  if (options.bnStats !== undefined && (typeof options.bnStats !== 'string' || options.bnStats === ''))
    throw new TypeError('bnStats must be a non-empty string');
  const arrays = await readNpz(file);
  const model = buildModel(arch);
  try {
    // Which tensor comes from which file, so that every message blames the right one.
    const expected: Array<{ layer: tfl.layers.Layer; key: string; stat: boolean }> = [];
    for (const layer of model.layers) {
      for (const weight of layer.weights) {
        const short = weight.originalName.split('/').pop() as string;
        expected.push({ layer, key: torchName(layer.name, weight.originalName), stat: isBatchNormStat(short) });
      }
    }
    const list = (keys: string[]): string => `${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ', …' : ''}`;
    // The model file first: a file of another architecture is a wrong --arch, whatever else is missing.
    const missing = expected.filter((e) => !e.stat && !arrays.has(e.key)).map((e) => e.key);
    if (missing.length)
      throw new AdvcorrectError('ERR_MODEL', `${file} lacks ${missing.length} tensors of a ${arch}: ${list(missing)} (wrong --arch?)`);
    const statKeys = new Set(expected.filter((e) => e.stat).map((e) => e.key));
    const known = new Set(expected.map((e) => e.key));
    const unexpected = [...arrays.keys()].filter((key) => !known.has(key) && !key.endsWith('.num_batches_tracked'));
    if (unexpected.length)
      throw new AdvcorrectError('ERR_MODEL', `${file} has tensors that a ${arch} does not: ${list(unexpected)} (wrong --arch?)`);
    const sourceOf = new Map<string, string>();
    for (const key of arrays.keys()) sourceOf.set(key, file);
    if (statKeys.size > 0 && [...statKeys].some((key) => !arrays.has(key))) {
      const statsFile = options.bnStats ?? file.replace(/\.npz$/, '') + '_bn_stats.npz';
      if (!existsSync(statsFile)) {
        throw new AdvcorrectError('ERR_MODEL', `${arch} has BatchNorm layers: their running statistics are needed from ${statsFile} (not found; pass bnStats)`);
      }
      const stats = await readNpz(statsFile);
      const missingStats = [...statKeys].filter((key) => !arrays.has(key) && !stats.has(key));
      if (missingStats.length)
        throw new AdvcorrectError('ERR_MODEL', `${statsFile} lacks ${missingStats.length} BatchNorm statistics of a ${arch}: ${list(missingStats)} (wrong --bn-stats file?)`);
      const foreign = [...stats.keys()].filter((key) => !statKeys.has(key) && !known.has(key) && !key.endsWith('.num_batches_tracked'));
      if (foreign.length)
        throw new AdvcorrectError('ERR_MODEL', `${statsFile} has tensors that are no BatchNorm statistics of a ${arch}: ${list(foreign)} (wrong --bn-stats file?)`);
      for (const [key, value] of stats) {
        if (arrays.has(key)) continue;
        arrays.set(key, value);
        sourceOf.set(key, statsFile);
      }
    }
    for (const layer of model.layers) {
      if (layer.weights.length === 0) continue;
      const values: tf.Tensor[] = [];
      try {
        for (const weight of layer.weights) {
          const short = weight.originalName.split('/').pop() as string;
          const key = torchName(layer.name, weight.originalName);
          const array = arrays.get(key) as NpyArray;
          const label = `${sourceOf.get(key)}:${key}`;
          values.push(torchToTfjs(layer, weight.shape as number[], short, array, label));
        }
        layer.setWeights(values);
      } finally {
        tf.dispose(values);
      }
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  const normalization = options.normalization === null ? undefined : (options.normalization ?? ARCHITECTURES[arch].normalization);
  const meta: AdvcorrectMetadata = { arch, ...(normalization ? { normalization: { mean: [...normalization.mean], std: [...normalization.std] } } : {}) };
  model.setUserDefinedMetadata({ advcorrect: meta });
  return describe(model, 'npz', meta);
}

/**
 * Writes a model built by {@link buildModel} (or imported) back to PyTorch layout: trainable tensors to
 * `file`, and for models with BatchNorm the running statistics to `<file without .npz>_bn_stats.npz`.
 * Returns the files written.
 */
export async function exportNpz(model: tfl.LayersModel, arch: ArchName, file: string): Promise<string[]> {
  if (!(model instanceof tfl.LayersModel)) throw new TypeError('model must be a tfjs LayersModel');
  if (!ARCH_NAMES.includes(arch)) throw new TypeError(`arch must be one of ${ARCH_NAMES.join(', ')}`);
  if (typeof file !== 'string') throw new TypeError('path must be a string');
  const reference = buildModel(arch);
  const layerNames = reference.layers.filter((l) => l.weights.length > 0).map((l) => l.name);
  reference.dispose();
  const params = new Map<string, NpyArray>();
  const stats = new Map<string, NpyArray>();
  for (const name of layerNames) {
    let layer: tfl.layers.Layer;
    try {
      layer = model.getLayer(name);
    } catch {
      throw new AdvcorrectError('ERR_MODEL', `the model has no layer ${name}: it is not a ${arch}`);
    }
    const values = layer.getWeights();
    layer.weights.forEach((weight, i) => {
      const short = weight.originalName.split('/').pop() as string;
      const key = torchName(layer.name, weight.originalName);
      (isBatchNormStat(short) ? stats : params).set(key, tfjsToTorch(layer, values[i], short));
    });
    if (layer.getClassName() === 'BatchNormalization') {
      stats.set(`${layer.name.replace(/_/g, '.')}.num_batches_tracked`, { dtype: 'int64', shape: [], data: [0] });
    }
  }
  await writeNpz(file, params);
  const written = [file];
  if (stats.size) {
    const statsFile = file.replace(/\.npz$/, '') + '_bn_stats.npz';
    await writeNpz(statsFile, stats);
    written.push(statsFile);
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// TensorFlow.js LayersModel on disk

const SUPPORTED_LAYERS = new Set([
  'InputLayer',
  'Dense',
  'Conv2D',
  'ZeroPadding2D',
  'Flatten',
  'ReLU',
  'Activation',
  'BatchNormalization',
  'Add',
  'GlobalAveragePooling2D',
  'Reshape',
  'Dropout',
  'MaxPooling2D',
  'AveragePooling2D',
  'LeakyReLU',
  'Concatenate',
]);
const SUPPORTED_ACTIVATIONS = new Set(['relu', 'linear', 'sigmoid', 'tanh']);

interface LayerConfigJson {
  class_name: string;
  config?: { name?: string; activation?: string; data_format?: string; layers?: unknown; max_value?: number | null; axis?: number | number[] };
}

/**
 * Checks a Keras/tfjs model topology against the layers we support (the correction needs logits and
 * gradients of plain feed-forward ReLU networks). Throws ERR_UNSUPPORTED naming the first offending layer.
 */
export function checkTopology(topology: unknown, what = 'model'): void {
  const root = (topology as { model_config?: unknown })?.model_config ?? topology;
  const cfg = root as { class_name?: string; config?: { layers?: LayerConfigJson[] } | LayerConfigJson[] };
  const layers = Array.isArray(cfg?.config) ? cfg.config : cfg?.config?.layers;
  if (!Array.isArray(layers)) throw new AdvcorrectError('ERR_MODEL', `${what}: model topology has no layer list`);
  for (const layer of layers) {
    const cls = layer.class_name;
    const name = layer.config?.name ?? '(unnamed)';
    if (cls === 'Sequential' || cls === 'Model' || cls === 'Functional') {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `${what}: layer ${name} is a nested ${cls}; nested models are not supported (flatten it into one model)`);
    }
    if (!SUPPORTED_LAYERS.has(cls)) {
      throw new AdvcorrectError(
        'ERR_UNSUPPORTED',
        `${what}: layer ${name} of type ${cls} is not supported (supported: ${[...SUPPORTED_LAYERS].join(', ')})`,
      );
    }
    const activation = layer.config?.activation;
    if (activation !== undefined && !SUPPORTED_ACTIVATIONS.has(activation)) {
      const hint = activation === 'softmax' ? '; the model must output logits: remove the softmax' : '';
      throw new AdvcorrectError('ERR_UNSUPPORTED', `${what}: layer ${name} (${cls}) uses activation '${activation}', only relu and linear are supported${hint}`);
    }
    if (cls === 'ReLU' && layer.config?.max_value != null) {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `${what}: layer ${name} is a ReLU capped at ${layer.config.max_value}; only the plain ReLU is supported`);
    }
    if (cls === 'BatchNormalization') {
      const axis = layer.config?.axis;
      if (axis !== undefined && axis !== -1 && axis !== 3 && !(Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3))) {
        throw new AdvcorrectError('ERR_UNSUPPORTED', `${what}: layer ${name} normalises axis ${JSON.stringify(axis)}; only the channel axis of NHWC (-1 or 3) is supported`);
      }
    }
    if (layer.config?.data_format === 'channels_first') {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `${what}: layer ${name} (${cls}) is channels_first; only channels_last (NHWC) models are supported`);
    }
  }
  checkGraph(root, layers, what);
}

/**
 * The connections of a functional topology must form a graph TensorFlow.js can build: unique layer
 * names, inbound layers and node indices that exist, no cycle, inputs and outputs that name layers.
 * (tfjs-layers waits forever for a node that never comes.) Sequential topologies have no links.
 */
function checkGraph(root: unknown, layers: LayerConfigJson[], what: string): void {
  const bad = (message: string): never => {
    throw new AdvcorrectError('ERR_MODEL', `${what}: model topology: ${message}`);
  };
  type Linked = LayerConfigJson & { name?: unknown; inbound_nodes?: unknown };
  const linked = layers as Linked[];
  if (!linked.some((l) => l !== null && typeof l === 'object' && l.inbound_nodes !== undefined)) return;
  const nodeCount = new Map<string, number>();
  for (const layer of linked) {
    if (layer === null || typeof layer !== 'object') bad('a layer entry is not an object');
    const name = layer.name ?? layer.config?.name;
    if (typeof name !== 'string' || name === '') bad('a layer has no name');
    if (nodeCount.has(name as string)) bad(`two layers are named ${name}`);
    if (layer.config?.name !== undefined && layer.config.name !== name) bad(`layer ${name} calls itself ${String(layer.config.name)} in its config`);
    if (!Array.isArray(layer.inbound_nodes)) bad(`layer ${name} has no inbound_nodes list`);
    nodeCount.set(name as string, Math.max(1, (layer.inbound_nodes as unknown[]).length));
  }
  const edges = new Map<string, string[]>();
  const checkRef = (ref: unknown, context: string): string => {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string') return bad(`${context}: expected [layer, node, tensor, …]`);
    const [target, node, tensor] = ref as [string, unknown, unknown];
    if (!nodeCount.has(target)) bad(`${context} names the unknown layer ${target}`);
    if (!Number.isInteger(node) || (node as number) < 0 || (node as number) >= nodeCount.get(target)!)
      bad(`${context} names node ${String(node)} of layer ${target}, which has ${nodeCount.get(target)}`);
    if (tensor !== 0) bad(`${context} names output ${String(tensor)} of layer ${target}; supported layers have one output`);
    return target;
  };
  for (const layer of linked) {
    const name = (layer.name ?? layer.config?.name) as string;
    const from: string[] = [];
    for (const node of layer.inbound_nodes as unknown[]) {
      if (!Array.isArray(node)) bad(`layer ${name}: an inbound node is not a list`);
      for (const ref of node as unknown[]) from.push(checkRef(ref, `layer ${name}`));
    }
    edges.set(name, from);
  }
  // No cycles (iterative depth-first search).
  const state = new Map<string, 1 | 2>();
  for (const start of edges.keys()) {
    if (state.has(start)) continue;
    const stack: Array<{ name: string; next: number }> = [{ name: start, next: 0 }];
    state.set(start, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const deps = edges.get(top.name)!;
      if (top.next < deps.length) {
        const dep = deps[top.next++];
        const seen = state.get(dep);
        if (seen === 1) bad(`the layers form a cycle through ${dep}`);
        if (seen === undefined) {
          state.set(dep, 1);
          stack.push({ name: dep, next: 0 });
        }
      } else {
        state.set(top.name, 2);
        stack.pop();
      }
    }
  }
  const config = (root as { config?: { input_layers?: unknown; output_layers?: unknown } })?.config;
  for (const key of ['input_layers', 'output_layers'] as const) {
    const list = config?.[key];
    if (!Array.isArray(list) || list.length === 0) bad(`${key} must list at least one layer`);
    for (const ref of list as unknown[]) checkRef(ref, key);
  }
}

interface ModelJsonFile {
  format?: string;
  modelTopology?: unknown;
  weightsManifest?: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  [key: string]: unknown;
}

/** Largest model.json read (topology and manifest; the weights are in separate files). */
export const MODEL_JSON_MAX_BYTES = 64 * 2 ** 20;
/** Largest weights file read. */
export const WEIGHTS_MAX_BYTES = 2 ** 31 - 1;

async function readWeights(dir: string, manifest: tf.io.WeightsManifestConfig, source: string): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  if (!Array.isArray(manifest)) throw new AdvcorrectError('ERR_MODEL', `${source}: weightsManifest must be a list of groups`);
  for (const group of manifest) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights))
      throw new AdvcorrectError('ERR_MODEL', `${source}: each weightsManifest group needs 'paths' and 'weights' lists`);
    for (const spec of group.weights) {
      const ok =
        spec !== null &&
        typeof spec === 'object' &&
        typeof spec.name === 'string' &&
        typeof spec.dtype === 'string' &&
        Array.isArray(spec.shape) &&
        spec.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
      if (!ok) throw new AdvcorrectError('ERR_MODEL', `${source}: a weightsManifest entry needs a name, a dtype and a shape of integers ≥ 0 (got ${JSON.stringify(spec)?.slice(0, 200)})`);
      if (spec.quantization !== undefined && (spec.quantization === null || typeof spec.quantization !== 'object'))
        throw new AdvcorrectError('ERR_MODEL', `${source}: weight ${spec.name} has a malformed quantization entry`);
      specs.push(spec);
    }
    for (const rel of group.paths) {
      // Weights files must stay inside the model's folder: no absolute path, no '..', no symlink out.
      const file = await resolveInside(dir, rel, source);
      let bytes: Buffer;
      try {
        bytes = await readFileCapped(file, 'weights file', WEIGHTS_MAX_BYTES);
      } catch (error) {
        if (error instanceof AdvcorrectError && error.code === 'ERR_IO')
          throw new AdvcorrectError('ERR_IO', `cannot read weights file ${file}: ${error.message.replace(/^cannot read [^:]*: /, '')}`, { cause: error });
        throw error;
      }
      buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
  }
  const data = tf.io.CompositeArrayBuffer.join(buffers);
  const bytesPer: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, float16: 2, uint16: 2, int16: 2 };
  let needed = 0;
  for (const spec of specs) {
    const elements = spec.shape.reduce((a, b) => a * b, 1);
    needed += spec.quantization ? elements * (spec.quantization.dtype === 'uint8' ? 1 : 2) : elements * (bytesPer[spec.dtype] ?? 4);
  }
  if (data.byteLength < needed) {
    throw new AdvcorrectError('ERR_DATA', `${dir}: weights files hold ${data.byteLength} bytes, the manifest needs ${needed} (truncated?)`);
  }
  return [specs, data];
}

/**
 * A tfjs IOHandler for a model.json-style file and its weights files on disk (tfjs-node's file:// is
 * not available without libtensorflow). `target` is a directory (model.json inside) or a .json file.
 * Saving writes `weights.bin` (or `<name>.weights.bin` for a named .json) and then the JSON, each
 * atomically (temporary file + rename).
 */
export function diskIOHandler(target: string): tf.io.IOHandler {
  const isJson = target.endsWith('.json');
  const dir = isJson ? path.dirname(target) : target;
  const modelFile = isJson ? target : path.join(dir, 'model.json');
  const weightsName = path.basename(modelFile) === 'model.json' ? 'weights.bin' : `${path.basename(modelFile, '.json')}.weights.bin`;
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new AdvcorrectError('ERR_MODEL', 'binary model topologies are not supported');
      const weightData = artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const manifest: tf.io.WeightsManifestConfig = [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [] }];
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: manifest,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeFileAtomic(path.join(dir, weightsName), new Uint8Array(weightData));
      await writeFileAtomic(modelFile, JSON.stringify(json));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: weightData.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const json = await readModelJson(modelFile);
      return tf.io.getModelArtifactsForJSON(json as unknown as tf.io.ModelJSON, (manifest) => readWeights(dir, manifest, modelFile));
    },
  };
}

async function readModelJson(file: string): Promise<ModelJsonFile> {
  const text = (await readFileCapped(file, 'model.json', MODEL_JSON_MAX_BYTES)).toString('utf8');
  let json: ModelJsonFile;
  try {
    json = JSON.parse(text) as ModelJsonFile;
  } catch (error) {
    throw new AdvcorrectError('ERR_PARSE', `${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new AdvcorrectError('ERR_MODEL', `${file} is not a model.json object`);
  const topology = json.modelTopology as { node?: unknown; class_name?: string; model_config?: unknown } | undefined;
  if (json.format === 'graph-model' || (topology && Array.isArray(topology.node))) {
    throw new AdvcorrectError(
      'ERR_UNSUPPORTED',
      `${file} is a TensorFlow.js GraphModel (a frozen inference graph): it cannot be fine-tuned, so it cannot be corrected. ` +
        'Export the model as a Keras/tfjs LayersModel (tensorflowjs_converter --output_format tfjs_layers_model) instead.',
    );
  }
  if (!topology || (topology.class_name === undefined && topology.model_config === undefined)) {
    throw new AdvcorrectError('ERR_MODEL', `${file} has no Keras model topology: not a TensorFlow.js LayersModel`);
  }
  checkTopology(topology, file);
  // Without a manifest TensorFlow.js would build the model with freshly initialised weights.
  if (!Array.isArray(json.weightsManifest)) throw new AdvcorrectError('ERR_MODEL', `${file} has no weightsManifest list: its weights are missing`);
  return json;
}

/** Refuses a model with a NaN or infinite weight (ERR_NON_FINITE naming the weight and the first bad index). */
export function checkFiniteWeights(model: tfl.LayersModel, source: string): void {
  for (const weight of model.weights) {
    const values = weight.read().dataSync() as Float32Array;
    checkFiniteArray(values, weight.shape as number[], `${source}: weight ${weight.originalName}`);
  }
}

/** Why `model` does not have the weight layers of `arch` (layer names and weight shapes), or undefined if it does. */
export function archMismatch(model: tfl.LayersModel, arch: ArchName): string | undefined {
  const reference = buildModel(arch);
  try {
    for (const layer of reference.layers) {
      if (layer.weights.length === 0) continue;
      let other: tfl.layers.Layer;
      try {
        other = model.getLayer(layer.name);
      } catch {
        return `it has no layer ${layer.name}`;
      }
      const expected = layer.weights.map((w) => w.shape.join('×')).join(', ');
      const actual = other.weights.map((w) => w.shape.join('×')).join(', ');
      if (expected !== actual) return `layer ${layer.name} has weights [${actual}], a ${arch} has [${expected}]`;
    }
    return undefined;
  } finally {
    reference.dispose();
  }
}

/** Saves a LayersModel as `dir/model.json` + `dir/weights.bin`, recording arch/normalisation if given. */
export async function saveModel(model: tfl.LayersModel, dir: string, info: { arch?: ArchName; normalization?: Normalization } = {}): Promise<void> {
  if (!(model instanceof tfl.LayersModel)) throw new TypeError('model must be a tfjs LayersModel');
  if (typeof dir !== 'string') throw new TypeError('dir must be a string');
  if (info.arch !== undefined && !ARCH_NAMES.includes(info.arch)) throw new TypeError(`arch must be one of ${ARCH_NAMES.join(', ')}`);
  const meta: AdvcorrectMetadata = { ...metadataOf(model), ...(info.arch ? { arch: info.arch } : {}), ...(info.normalization ? { normalization: info.normalization } : {}) };
  model.setUserDefinedMetadata({ ...((model.getUserDefinedMetadata() as object | undefined) ?? {}), advcorrect: meta });
  await model.save(diskIOHandler(dir));
}

/**
 * Loads a model: a tfjs LayersModel (`model.json`, or a directory holding one), a PyTorch `.npz`
 * (needs `arch`) or an ONNX file (`.onnx`, see docs/data-and-models.md; `inputScale` when it takes
 * pixels in [0, inputScale]). Unsupported layers and GraphModels are refused with ERR_UNSUPPORTED.
 */
export async function loadModel(file: string, options: { arch?: ArchName; bnStats?: string; inputScale?: number } = {}): Promise<LoadedModel> {
  if (typeof file !== 'string' || file === '') throw new TypeError('path must be a non-empty string');
  if (options.arch !== undefined && !ARCH_NAMES.includes(options.arch)) throw new TypeError(`arch must be one of ${ARCH_NAMES.join(', ')}`);
  if (file.endsWith('.onnx')) {
    // ONNX: our own graph builder (lib/models/onnx); `arch` is not needed and not checked.
    const imported = await importOnnx(file, options.inputScale === undefined ? {} : { inputScale: options.inputScale });
    const { model, inputShape, numClasses, normalization, onnx, notices } = imported;
    try {
      checkFiniteWeights(model, file);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return { model, source: 'onnx', inputShape, numClasses, ...(normalization ? { normalization } : {}), onnx, notices };
  }
  if (options.inputScale !== undefined) throw new TypeError('inputScale applies to .onnx models only');
  if (file.endsWith('.npz')) {
    if (!options.arch) throw new TypeError(`arch is required to load an .npz file (one of ${ARCH_NAMES.join(', ')})`);
    return importNpz(file, options.arch, { bnStats: options.bnStats });
  }
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (info.isDirectory() && !existsSync(path.join(file, 'model.json'))) throw new AdvcorrectError('ERR_IO', `${file} has no model.json`);
  if (!info.isDirectory() && !file.endsWith('.json')) {
    throw new AdvcorrectError('ERR_MODEL', `${file}: expected a tfjs model.json (or a directory holding one), a PyTorch .npz or an ONNX .onnx file`);
  }
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(diskIOHandler(file));
  } catch (error) {
    if (error instanceof AdvcorrectError) throw error;
    throw new AdvcorrectError('ERR_MODEL', `${file}: TensorFlow.js cannot load this model: ${(error as Error).message}`, { cause: error });
  }
  try {
    checkFiniteWeights(model, file);
  } catch (error) {
    model.dispose();
    throw error;
  }
  const meta = metadataOf(model);
  if (options.arch && meta.arch && options.arch !== meta.arch) {
    throw new AdvcorrectError('ERR_MODEL', `${file} is a ${meta.arch}, not a ${options.arch}`);
  }
  if (options.arch && !meta.arch) {
    const mismatch = archMismatch(model, options.arch);
    if (mismatch) throw new AdvcorrectError('ERR_MODEL', `${file} is not a ${options.arch}: ${mismatch}`);
    meta.arch = options.arch;
  }
  return describe(model, 'tfjs', meta);
}
