/**
 * ONNX → TensorFlow.js: builds a channels-last LayersModel equivalent to an ONNX image classifier
 * (NCHW float32 input), with the Conv/Gemm/MatMul/BatchNormalization initializers as layer weights.
 * Every tensor of the ONNX graph is tracked with its NCHW shape and how it is held in tfjs (NHWC, or
 * flat with a pending C,H,W → H,W,C feature permutation that the next Dense kernel absorbs), so the
 * result needs no transposes at run time and compiles in the gradient engine.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFile } from 'node:fs/promises';
import { AdvcorrectError } from '../../errors.js';
import type { Normalization } from '../../data/datasets.js';
import { decodeModel, DataType, type OnnxModel, type OnnxNode, type OnnxTensor } from './proto.js';

/** Opsets of the default domain that the importer accepts. */
export const ONNX_OPSETS = { min: 11, max: 17 } as const;

/** Operators the importer turns into layers (the shape operators only on constants). */
export const ONNX_OPERATORS = [
  'Conv', 'Gemm', 'MatMul', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'BatchNormalization', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'ReduceMean', 'Pad', 'Flatten', 'Reshape', 'Transpose', 'Add', 'Sub', 'Mul', 'Div', 'Concat', 'Identity', 'Dropout',
  'Constant', 'Softmax', 'Shape', 'Gather', 'Unsqueeze', 'Cast',
] as const;

/** Where a tfjs weight goes in the ONNX file, and in which layout. */
export interface OnnxWeightBinding {
  layer: string;
  /** Short tfjs weight name: kernel, bias, gamma, beta, moving_mean, moving_variance. */
  weight: string;
  initializer: string;
  /** conv: HWIO ↔ OIHW; gemm-t: [in,out] ↔ [out,in]; gemm: [in,out] ↔ [in,out]; vector: as is. */
  layout: 'conv' | 'gemm-t' | 'gemm' | 'vector';
  /** For a Dense fed by a flatten of an NCHW tensor: [C, H, W] (rows permuted C,H,W ↔ H,W,C). */
  chw?: [number, number, number];
  /**
   * Set when `initializer` is not an initializer but the output of an Identity node of this one (the
   * exporter de-duplicated equal tensors): if the two weights differ after a correction, the export
   * replaces that Identity node by an initializer of its own.
   */
  identityOf?: string;
  /** Grouped Conv: this layer holds output channels [start, start + count) of the initializer. */
  outSlice?: [number, number];
}

/** What an ONNX import keeps for writing the model back (see exportOnnx). */
export interface OnnxSource {
  file: string;
  bytes: Uint8Array;
  opset: number;
  bindings: OnnxWeightBinding[];
}

export interface OnnxImport {
  model: tfl.LayersModel;
  inputShape: number[];
  numClasses: number;
  normalization?: Normalization;
  onnx: OnnxSource;
  notices: string[];
}

export interface ImportOnnxOptions {
  /** The pixel range the network was trained on is [0, inputScale] (default 1; 255 for raw bytes). */
  inputScale?: number;
}

type Layout = 'nchw' | 'nhwc' | 'flat' | 'pooled';

/** An ONNX value computed by the network: its tfjs tensor and its ONNX shape without the batch. */
interface Val {
  t: tfl.SymbolicTensor;
  layout: Layout;
  /** ONNX shape without the batch: [C,H,W] for nchw/pooled (H = W = 1), [H,W,C] for nhwc, [F] for flat. */
  shape: number[];
  /** flat only: the features are held in H,W,C order while ONNX orders them C,H,W. */
  chw?: [number, number, number];
}

/** A constant: an initializer, a Constant node, or a folded shape computation. NaN marks the batch size. */
interface Const {
  dims: number[];
  values: ArrayLike<number>;
  /** The initializer it came from, if any. */
  initializer?: string;
  /** For the output of an Identity of an initializer: that initializer. */
  identityOf?: string;
}

function fail(message: string): AdvcorrectError {
  return new AdvcorrectError('ERR_ONNX', message);
}

/** Reads an ONNX file and builds the tfjs model. Throws ERR_ONNX (or ERR_IO) on anything it cannot import exactly. */
export async function importOnnx(file: string, options: ImportOnnxOptions = {}): Promise<OnnxImport> {
  if (typeof file !== 'string' || file === '') throw new TypeError('path must be a non-empty string');
  const scale = options.inputScale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) throw new RangeError('inputScale must be a positive finite number');
  let buffer: Buffer;
  try {
    buffer = await readFile(file);
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const parsed = decodeModel(bytes, file);
  // A refused model leaves no variables behind: dispose those its layers created before the error.
  const registered = tf.engine().registeredVariables;
  const before = new Set(Object.keys(registered));
  try {
    return new Builder(file, parsed, scale).build(new Uint8Array(bytes));
  } catch (error) {
    for (const [name, variable] of Object.entries(tf.engine().registeredVariables)) if (!before.has(name)) variable.dispose();
    throw error;
  }
}

class Builder {
  private readonly values = new Map<string, Val>();
  private readonly consts = new Map<string, Const>();
  private readonly uses = new Map<string, number>();
  private readonly layerNames = new Set<string>();
  private readonly bindings: OnnxWeightBinding[] = [];
  private readonly bound = new Set<string>();
  private readonly notices: string[] = [];
  /** Add nodes whose constant became the bias of the MatMul before them. */
  private readonly foldedAdds = new Set<OnnxNode>();

  constructor(
    private readonly file: string,
    private readonly onnx: OnnxModel,
    private readonly inputScale: number,
  ) {}

  build(bytes: Uint8Array): OnnxImport {
    const { graph, opset } = this.onnx;
    if (opset < ONNX_OPSETS.min || opset > ONNX_OPSETS.max) {
      throw fail(`${this.file}: opset ${opset < 0 ? '(none)' : opset} is not supported (supported: ${ONNX_OPSETS.min}–${ONNX_OPSETS.max}); re-export with opset_version in that range`);
    }
    for (const [name, t] of graph.initializers) {
      if (t.external) throw fail(`${this.file}: initializer '${name}' keeps its data in an external file; export the model with the weights inside the .onnx file`);
      this.consts.set(name, { dims: t.dims, values: t.values, initializer: name });
    }
    const inputs = graph.inputs.filter((i) => !graph.initializers.has(i.name));
    if (inputs.length !== 1) throw fail(`${this.file}: the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); exactly one image input is supported`);
    if (graph.outputs.length !== 1) throw fail(`${this.file}: the model has ${graph.outputs.length} outputs (${graph.outputs.map((o) => o.name).join(', ')}); exactly one (the logits) is supported`);
    const input = inputs[0];
    if (input.elemType !== DataType.FLOAT) throw fail(`${this.file}: input '${input.name}' is not float32 (element type ${input.elemType})`);
    const shape = input.shape;
    if (!shape || shape.length !== 4 || shape.slice(1).some((d) => typeof d !== 'number' || d <= 0)) {
      throw fail(`${this.file}: input '${input.name}' has shape [${(shape ?? []).map((d) => d ?? '?').join(', ')}]; an NCHW image input [batch, C, H, W] with fixed C, H, W is needed (dynamic image sizes cannot be resolved)`);
    }
    const [c, h, w] = shape.slice(1) as number[];
    for (const node of graph.nodes) for (const name of node.inputs) if (name) this.uses.set(name, (this.uses.get(name) ?? 0) + 1);
    for (const o of graph.outputs) this.uses.set(o.name, (this.uses.get(o.name) ?? 0) + 1);

    const x = tfl.input({ shape: [h, w, c], name: 'input' });
    this.layerNames.add('input');
    for (const node of graph.nodes) if (node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx')) this.constant(node);
    const normalization = this.peelNormalization(input.name, c);
    this.values.set(normalization.output, { t: x, layout: 'nchw', shape: [c, h, w] });

    for (const node of graph.nodes) {
      if (normalization.nodes.has(node) || this.foldedAdds.has(node)) continue;
      this.node(node, graph.outputs[0].name);
    }
    const outName = graph.outputs[0].name;
    const out = this.values.get(outName);
    if (!out) throw fail(`${this.file}: the output '${outName}' is not computed from the input by supported operators`);
    if (out.layout !== 'flat' || out.chw) throw fail(`${this.file}: the output '${outName}' has shape [batch, ${out.shape.join(', ')}]; logits [batch, classes] are needed`);
    const model = tfl.model({ inputs: x, outputs: out.t, name: sanitize(graph.name || 'onnx_model') });
    const result: OnnxImport = {
      model,
      inputShape: [h, w, c],
      numClasses: out.shape[0],
      onnx: { file: this.file, bytes, opset: this.onnx.opset, bindings: this.bindings },
      notices: this.notices,
    };
    if (normalization.mean) result.normalization = { mean: normalization.mean, std: normalization.std as number[] };
    return result;
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private where(node: OnnxNode): string {
    return `${this.file}: node '${node.name || node.outputs[0]}' (${node.opType})`;
  }

  private layerName(node: OnnxNode, suffix = ''): string {
    let base = sanitize((node.name || node.outputs[0] || node.opType) + suffix);
    if (!/^[A-Za-z]/.test(base)) base = `n${base}`;
    let name = base;
    for (let k = 1; this.layerNames.has(name); k++) name = `${base}_${k}`;
    this.layerNames.add(name);
    return name;
  }

  private val(node: OnnxNode, index: number): Val {
    const name = node.inputs[index];
    const v = this.values.get(name);
    if (!v) {
      if (this.consts.has(name)) throw fail(`${this.where(node)}: input ${index} '${name}' is a constant where a computed tensor is expected`);
      throw fail(`${this.where(node)}: input '${name}' is not computed from the image input by supported operators`);
    }
    return v;
  }

  private konst(node: OnnxNode, index: number, what: string): Const {
    const c = this.consts.get(node.inputs[index]);
    if (!c) throw fail(`${this.where(node)}: the ${what} '${node.inputs[index] ?? ''}' must be a constant (an initializer)`);
    return c;
  }

  private weight(node: OnnxNode, index: number, what: string): Const & { initializer: string } {
    const c = this.konst(node, index, what);
    if (c.identityOf) return { ...c, initializer: node.inputs[index] };
    if (!c.initializer) throw fail(`${this.where(node)}: the ${what} '${node.inputs[index]}' must be an initializer`);
    if (this.bound.has(c.initializer)) throw fail(`${this.where(node)}: initializer '${c.initializer}' is shared with another layer; shared (tied) weights are not supported`);
    return c as Const & { initializer: string };
  }

  private bind(layer: string, weight: string, initializer: string, layout: OnnxWeightBinding['layout'], chw?: [number, number, number]): void {
    this.bound.add(initializer);
    const identityOf = this.consts.get(initializer)?.identityOf;
    this.bindings.push({ layer, weight, initializer, layout, ...(chw ? { chw } : {}), ...(identityOf ? { identityOf } : {}) });
  }

  private ints(node: OnnxNode, name: string, fallback: number[]): number[] {
    const a = node.attributes.get(name);
    return a ? a.ints : fallback;
  }

  private int(node: OnnxNode, name: string, fallback: number): number {
    return node.attributes.get(name)?.i ?? fallback;
  }

  private float(node: OnnxNode, name: string, fallback: number): number {
    return node.attributes.get(name)?.f ?? fallback;
  }

  private set(node: OnnxNode, v: Val): void {
    this.values.set(node.outputs[0], v);
  }

  private requireUnused(node: OnnxNode, from: number): void {
    for (const name of node.outputs.slice(from)) {
      if (name && this.uses.has(name)) throw fail(`${this.where(node)}: its output '${name}' is used; only the first output is supported`);
    }
  }

  private spatial(node: OnnxNode, v: Val): [number, number, number] {
    if (v.layout !== 'nchw') throw fail(`${this.where(node)}: needs an NCHW image tensor, got a tensor of shape [batch, ${v.shape.join(', ')}]`);
    return v.shape as [number, number, number];
  }

  /**
   * Folds Sub/Add/Mul/Div by per-channel constants right after the input into a per-channel affine
   * map x' = a·x + b; with a > 0 it becomes the model's normalization (mean −b/a, std 1/a in pixel
   * units of [0, 1] after inputScale), applied outside the network like the built-in models'.
   */
  private peelNormalization(inputName: string, channels: number): { output: string; nodes: Set<OnnxNode>; mean?: number[]; std?: number[] } {
    const nodes = new Set<OnnxNode>();
    let a = new Array<number>(channels).fill(1);
    let b = new Array<number>(channels).fill(0);
    let cur = inputName;
    for (;;) {
      if (this.uses.get(cur) !== 1) break;
      const node = this.onnx.graph.nodes.find((n) => n.inputs.includes(cur));
      if (!node || !['Sub', 'Add', 'Mul', 'Div'].includes(node.opType) || node.inputs[0] !== cur || node.inputs.length !== 2) break;
      const k = this.consts.get(node.inputs[1]);
      const per = k && channelVector(k, channels);
      if (!per) break;
      const na = a.slice();
      const nb = b.slice();
      for (let i = 0; i < channels; i++) {
        if (node.opType === 'Sub') nb[i] -= per[i];
        else if (node.opType === 'Add') nb[i] += per[i];
        else if (node.opType === 'Mul') {
          na[i] *= per[i];
          nb[i] *= per[i];
        } else {
          na[i] /= per[i];
          nb[i] /= per[i];
        }
      }
      if (na.some((v) => !(v > 0) || !Number.isFinite(v)) || nb.some((v) => !Number.isFinite(v))) break;
      a = na;
      b = nb;
      nodes.add(node);
      cur = node.outputs[0];
    }
    const s = this.inputScale;
    if (nodes.size === 0 && s === 1) return { output: cur, nodes };
    const mean = b.map((bi, i) => -bi / a[i] / s);
    const std = a.map((ai) => 1 / (ai * s));
    const names = [...nodes].map((n) => `${n.opType} '${n.name || n.outputs[0]}'`);
    this.notices.push(
      `${names.length ? `input normalisation in the graph (${names.join(', ')})` : 'the input scale'} ` +
        `${names.length && s !== 1 ? `with input scale ${s} ` : s !== 1 ? `${s} ` : ''}is applied outside the network as mean [${mean.map(fmt).join(', ')}], std [${std.map(fmt).join(', ')}] on pixels in [0, 1]; ε stays in pixel units`,
    );
    return { output: cur, nodes, mean, std };
  }

  // ---- operators --------------------------------------------------------------------------------

  private node(node: OnnxNode, graphOutput: string): void {
    if (node.domain !== '' && node.domain !== 'ai.onnx') {
      throw fail(`${this.where(node)}: operator ${node.domain}.${node.opType} is not supported (supported: ${ONNX_OPERATORS.join(', ')})`);
    }
    for (const a of node.attributes.values()) if (a.hasGraph) throw fail(`${this.where(node)}: subgraph attributes are not supported`);
    const op = node.opType;
    switch (op) {
      case 'Constant': return this.constant(node);
      case 'Identity': return this.alias(node);
      case 'Dropout': {
        if (node.inputs[2] && this.consts.get(node.inputs[2])?.values[0]) throw fail(`${this.where(node)}: dropout in training mode is not supported`);
        this.requireUnused(node, 1);
        return this.alias(node);
      }
      case 'Shape': case 'Gather': case 'Unsqueeze': case 'Cast': return this.shapeOp(node);
      case 'Concat':
        if (node.inputs.every((n) => this.consts.has(n))) return this.shapeOp(node);
        return this.concat(node);
      case 'Conv': return this.conv(node);
      case 'Gemm': return this.gemm(node);
      case 'MatMul': return this.matmul(node);
      case 'Relu': return this.unary(node, tfl.layers.reLU({ name: this.layerName(node) }));
      case 'LeakyRelu': return this.unary(node, tfl.layers.leakyReLU({ alpha: this.float(node, 'alpha', 0.01), name: this.layerName(node) }));
      case 'Sigmoid': return this.unary(node, tfl.layers.activation({ activation: 'sigmoid', name: this.layerName(node) }));
      case 'Tanh': return this.unary(node, tfl.layers.activation({ activation: 'tanh', name: this.layerName(node) }));
      case 'BatchNormalization': return this.batchNorm(node);
      case 'MaxPool': case 'AveragePool': return this.pool(node);
      case 'GlobalAveragePool': {
        const v = this.val(node, 0);
        const [ch] = this.spatial(node, v);
        const t = tfl.layers.globalAveragePooling2d({ name: this.layerName(node) }).apply(v.t) as tfl.SymbolicTensor;
        return this.set(node, { t, layout: 'pooled', shape: [ch, 1, 1] });
      }
      case 'ReduceMean': {
        const v = this.val(node, 0);
        const [ch] = this.spatial(node, v);
        const axes = this.ints(node, 'axes', []).map((a) => (a < 0 ? a + 4 : a)).sort().join(',');
        if (axes !== '2,3') throw fail(`${this.where(node)}: ReduceMean over axes [${this.ints(node, 'axes', []).join(', ')}] is not supported (only the spatial axes 2, 3: a global average pool)`);
        const t = tfl.layers.globalAveragePooling2d({ name: this.layerName(node) }).apply(v.t) as tfl.SymbolicTensor;
        return this.set(node, this.int(node, 'keepdims', 1) ? { t, layout: 'pooled', shape: [ch, 1, 1] } : { t, layout: 'flat', shape: [ch] });
      }
      case 'Pad': return this.pad(node);
      case 'Flatten': {
        const axis = this.int(node, 'axis', 1);
        if (axis !== 1) throw fail(`${this.where(node)}: Flatten with axis ${axis} is not supported (only axis 1: [batch, features])`);
        return this.flatten(node, this.val(node, 0));
      }
      case 'Reshape': return this.reshape(node);
      case 'Transpose': {
        const v = this.val(node, 0);
        const perm = this.ints(node, 'perm', []);
        if (v.layout !== 'nchw' || perm.join(',') !== '0,2,3,1') {
          throw fail(`${this.where(node)}: Transpose with perm [${perm.join(', ')}] is not supported (only [0, 2, 3, 1] of an NCHW tensor just before a flatten)`);
        }
        const [ch, hh, ww] = v.shape;
        return this.set(node, { t: v.t, layout: 'nhwc', shape: [hh, ww, ch] });
      }
      case 'Add': case 'Sub': case 'Mul': case 'Div': return this.arithmetic(node);
      case 'Softmax': {
        if (node.outputs[0] !== graphOutput) throw fail(`${this.where(node)}: Softmax is supported only as the last node (the network then works on its input, the logits)`);
        const v = this.val(node, 0);
        if (v.layout !== 'flat') throw fail(`${this.where(node)}: Softmax of a tensor of shape [batch, ${v.shape.join(', ')}]`);
        this.notices.push(`the final Softmax '${node.name || node.outputs[0]}' is left out: advcorrect works on its input, the logits; the exported file keeps it`);
        return this.set(node, v);
      }
      default:
        throw fail(`${this.where(node)}: operator ${op} is not supported (supported: ${ONNX_OPERATORS.join(', ')})`);
    }
  }

  private alias(node: OnnxNode): void {
    const c = this.consts.get(node.inputs[0]);
    if (c) this.consts.set(node.outputs[0], { dims: c.dims, values: c.values, ...(c.initializer && node.opType === 'Identity' ? { identityOf: c.initializer } : {}) });
    else this.set(node, this.val(node, 0));
  }

  private constant(node: OnnxNode): void {
    const a = node.attributes.get('value');
    let c: Const;
    if (a?.t) c = { dims: a.t.dims, values: a.t.values };
    else if (node.attributes.get('value_float')) c = { dims: [], values: [node.attributes.get('value_float')!.f ?? 0] };
    else if (node.attributes.get('value_floats')) c = { dims: [node.attributes.get('value_floats')!.floats.length], values: node.attributes.get('value_floats')!.floats };
    else if (node.attributes.get('value_int')) c = { dims: [], values: [node.attributes.get('value_int')!.i ?? 0] };
    else if (node.attributes.get('value_ints')) c = { dims: [node.attributes.get('value_ints')!.ints.length], values: node.attributes.get('value_ints')!.ints };
    else throw fail(`${this.where(node)}: a Constant without a numeric value`);
    this.consts.set(node.outputs[0], c);
  }

  /** Shape arithmetic on constants (what exporters emit for x.view(x.size(0), -1)); NaN = batch size. */
  private shapeOp(node: OnnxNode): void {
    const op = node.opType;
    if (op === 'Shape') {
      const v = this.val(node, 0);
      const dims = [NaN, ...v.shape];
      this.consts.set(node.outputs[0], { dims: [dims.length], values: dims });
      return;
    }
    const ins = node.inputs.map((name, k) => (name ? this.konst(node, k, `input ${k}`) : undefined));
    const c0 = ins[0] as Const;
    if (op === 'Cast') {
      this.consts.set(node.outputs[0], { dims: c0.dims, values: c0.values });
    } else if (op === 'Gather') {
      const axis = this.int(node, 'axis', 0);
      if (axis !== 0 || c0.dims.length !== 1) throw fail(`${this.where(node)}: Gather is supported only on a 1-D shape tensor along axis 0`);
      const idx = ins[1] as Const;
      const picked = Array.from(idx.values, (i) => c0.values[i < 0 ? i + c0.values.length : i]);
      this.consts.set(node.outputs[0], { dims: idx.dims, values: picked });
    } else if (op === 'Unsqueeze') {
      const axes = ins[1] ? Array.from(ins[1].values) : this.ints(node, 'axes', []);
      const dims = c0.dims.slice();
      for (const ax of [...axes].sort((p, q) => p - q)) dims.splice(ax < 0 ? ax + dims.length + 1 : ax, 0, 1);
      this.consts.set(node.outputs[0], { dims, values: c0.values });
    } else if (op === 'Concat') {
      if (ins.some((c) => c!.dims.length > 1)) throw fail(`${this.where(node)}: Concat of constants is supported only for 1-D shape tensors`);
      const values = ins.flatMap((c) => Array.from(c!.values));
      this.consts.set(node.outputs[0], { dims: [values.length], values });
    }
  }

  private unary(node: OnnxNode, layer: tfl.layers.Layer): void {
    const v = this.val(node, 0);
    this.set(node, { ...v, t: layer.apply(v.t) as tfl.SymbolicTensor });
  }

  private flatten(node: OnnxNode, v: Val): void {
    if (v.layout === 'flat') return this.set(node, v);
    const size = v.shape.reduce((p, q) => p * q, 1);
    if (v.layout === 'pooled') return this.set(node, { t: v.t, layout: 'flat', shape: [size] });
    const t = tfl.layers.flatten({ name: this.layerName(node) }).apply(v.t) as tfl.SymbolicTensor;
    const [ch, hh, ww] = v.shape;
    const permuted = v.layout === 'nchw' && ch > 1 && hh * ww > 1;
    this.set(node, { t, layout: 'flat', shape: [size], ...(permuted ? { chw: [ch, hh, ww] as [number, number, number] } : {}) });
  }

  /** Zero padding of H and W (opset ≥ 11: pads and the constant value are inputs). */
  private pad(node: OnnxNode): void {
    const v = this.val(node, 0);
    const [ch, hh, ww] = this.spatial(node, v);
    const mode = node.attributes.get('mode')?.s ?? 'constant';
    const pads = Array.from(this.konst(node, 1, 'pads').values);
    const value = node.inputs[2] ? Number(this.konst(node, 2, 'constant value').values[0]) : 0;
    if (mode !== 'constant' || value !== 0 || pads.length !== 8 || pads.some((p) => p < 0) || pads[0] || pads[1] || pads[4] || pads[5]) {
      throw fail(`${this.where(node)}: only zero padding of H and W is supported (mode ${mode}, value ${value}, pads [${pads.join(', ')}])`);
    }
    const [top, left, bottom, right] = [pads[2], pads[3], pads[6], pads[7]];
    if (top + left + bottom + right === 0) return this.set(node, v);
    const t = tfl.layers.zeroPadding2d({ padding: [[top, bottom], [left, right]], name: this.layerName(node) }).apply(v.t) as tfl.SymbolicTensor;
    this.set(node, { t, layout: 'nchw', shape: [ch, hh + top + bottom, ww + left + right] });
  }

  private reshape(node: OnnxNode): void {
    const v = this.val(node, 0);
    const target = Array.from(this.konst(node, 1, 'target shape').values);
    const size = v.shape.reduce((p, q) => p * q, 1);
    const ok = target.length === 2 && (target[1] === size || (target[1] === -1 && target[0] !== -1));
    if (!ok) {
      throw fail(`${this.where(node)}: Reshape to [${target.map((d) => (Number.isNaN(d) ? 'batch' : d)).join(', ')}] is not supported (only flattening to [batch, ${size}])`);
    }
    this.flatten(node, v);
  }

  private conv(node: OnnxNode): void {
    const v = this.val(node, 0);
    const [cin, hh, ww] = this.spatial(node, v);
    const W = this.weight(node, 1, 'weight');
    const B = node.inputs[2] ? this.weight(node, 2, 'bias') : undefined;
    if (W.dims.length !== 4) throw fail(`${this.where(node)}: only 2-D convolutions are supported (weight dims [${W.dims.join(', ')}])`);
    const [cout, cinG, kh, kw] = W.dims;
    const group = this.int(node, 'group', 1);
    if (group < 1 || cin % group !== 0 || cout % group !== 0 || cinG * group !== cin) {
      throw fail(`${this.where(node)}: weight [${W.dims.join(', ')}] with group ${group} does not fit ${cin} input channels`);
    }
    const strides = this.ints(node, 'strides', [1, 1]);
    const dilations = this.ints(node, 'dilations', [1, 1]);
    if (strides.some((s) => s > 1) && dilations.some((d) => d > 1)) throw fail(`${this.where(node)}: strides and dilations both above 1 are not supported`);
    const pads = this.padsOf(node, [hh, ww], [kh, kw], strides, dilations);
    // group > 1: per group, a frozen 1×1 conv that selects its input channels (0/1 weights: exact),
    // the group's own Conv2D, and a Concatenate of the groups' outputs along channels.
    const coutG = cout / group;
    const outputs: tfl.SymbolicTensor[] = [];
    for (let g = 0; g < group; g++) {
      const suffix = group > 1 ? `_g${g}` : '';
      let t = v.t;
      if (group > 1) {
        const select = tfl.layers.conv2d({ filters: cinG, kernelSize: 1, useBias: false, trainable: false, name: this.layerName(node, `_select${g}`) });
        t = select.apply(t) as tfl.SymbolicTensor;
        const pick = new Float32Array(cin * cinG);
        for (let j = 0; j < cinG; j++) pick[(g * cinG + j) * cinG + j] = 1;
        const pickTensor = tf.tensor4d(pick, [1, 1, cin, cinG]);
        select.setWeights([pickTensor]);
        pickTensor.dispose();
      }
      if (pads.some((p) => p > 0)) {
        t = tfl.layers.zeroPadding2d({ padding: [[pads[0], pads[2]], [pads[1], pads[3]]], name: this.layerName(node, `${suffix}_pad`) }).apply(t) as tfl.SymbolicTensor;
      }
      const name = this.layerName(node, suffix);
      const layer = tfl.layers.conv2d({ filters: coutG, kernelSize: [kh, kw], strides: strides as [number, number], dilationRate: dilations as [number, number], padding: 'valid', useBias: !!B, name });
      outputs.push(layer.apply(t) as tfl.SymbolicTensor);
      const block = Float32Array.from(W.values).subarray(g * coutG * cinG * kh * kw, (g + 1) * coutG * cinG * kh * kw);
      const kernel = tf.tidy(() => tf.transpose(tf.tensor4d(block, [coutG, cinG, kh, kw]), [2, 3, 1, 0]));
      const weights: tf.Tensor[] = [kernel];
      if (B) weights.push(tf.tensor1d(Float32Array.from(B.values).subarray(g * coutG, (g + 1) * coutG)));
      layer.setWeights(weights);
      tf.dispose(weights);
      const slice = group > 1 ? { outSlice: [g * coutG, coutG] as [number, number] } : {};
      this.bindings.push({ layer: name, weight: 'kernel', initializer: W.initializer, layout: 'conv', ...slice });
      if (B) this.bindings.push({ layer: name, weight: 'bias', initializer: B.initializer, layout: 'vector', ...slice });
    }
    for (const c of [W, B]) {
      if (!c) continue;
      this.bound.add(c.initializer);
      if (c.identityOf) for (const b of this.bindings) if (b.initializer === c.initializer) b.identityOf = c.identityOf;
    }
    const t = group > 1 ? (tfl.layers.concatenate({ axis: -1, name: this.layerName(node, '_concat') }).apply(outputs) as tfl.SymbolicTensor) : outputs[0];
    const outH = Math.floor((hh + pads[0] + pads[2] - ((kh - 1) * dilations[0] + 1)) / strides[0]) + 1;
    const outW = Math.floor((ww + pads[1] + pads[3] - ((kw - 1) * dilations[1] + 1)) / strides[1]) + 1;
    this.set(node, { t, layout: 'nchw', shape: [cout, outH, outW] });
  }

  /** Explicit [top, left, bottom, right] pads from `pads` or `auto_pad`. */
  private padsOf(node: OnnxNode, size: number[], kernel: number[], strides: number[], dilations: number[]): number[] {
    const auto = node.attributes.get('auto_pad')?.s ?? 'NOTSET';
    if (auto === 'NOTSET' || auto === '') {
      const pads = this.ints(node, 'pads', [0, 0, 0, 0]);
      if (pads.length !== 4) throw fail(`${this.where(node)}: pads [${pads.join(', ')}] are not 2-D`);
      return pads;
    }
    if (auto === 'VALID') return [0, 0, 0, 0];
    if (auto !== 'SAME_UPPER' && auto !== 'SAME_LOWER') throw fail(`${this.where(node)}: auto_pad ${auto} is not supported`);
    const begin: number[] = [];
    const end: number[] = [];
    for (let k = 0; k < 2; k++) {
      const out = Math.ceil(size[k] / strides[k]);
      const total = Math.max(0, (out - 1) * strides[k] + (kernel[k] - 1) * dilations[k] + 1 - size[k]);
      const small = Math.floor(total / 2);
      begin.push(auto === 'SAME_UPPER' ? small : total - small);
      end.push(total - begin[k]);
    }
    return [begin[0], begin[1], end[0], end[1]];
  }

  private dense(node: OnnxNode, v: Val, kernelOnnx: Float32Array, nin: number, nout: number, transposed: boolean, initializer: string, bias?: Const & { initializer: string }): tfl.SymbolicTensor {
    if (v.layout !== 'flat' && v.layout !== 'pooled') throw fail(`${this.where(node)}: needs [batch, features] input, got [batch, ${v.shape.join(', ')}] (flatten first)`);
    const features = v.shape.reduce((p, q) => p * q, 1);
    if (features !== nin) throw fail(`${this.where(node)}: weight takes ${nin} features, the input has ${features}`);
    const name = this.layerName(node);
    const layer = tfl.layers.dense({ units: nout, useBias: !!bias, name });
    const t = layer.apply(v.t) as tfl.SymbolicTensor;
    const kernel = tf.tidy(() => {
      const k = transposed ? tf.transpose(tf.tensor2d(kernelOnnx, [nout, nin])) : tf.tensor2d(kernelOnnx, [nin, nout]);
      if (!v.chw) return k;
      const [c, h, w] = v.chw;
      return tf.reshape(tf.transpose(tf.reshape(k, [c, h, w, nout]), [1, 2, 0, 3]), [nin, nout]);
    });
    const weights: tf.Tensor[] = [kernel];
    if (bias) {
      if (bias.values.length !== nout) throw fail(`${this.where(node)}: bias has ${bias.values.length} values for ${nout} outputs`);
      weights.push(tf.tensor1d(Float32Array.from(bias.values)));
    }
    layer.setWeights(weights);
    tf.dispose(weights);
    this.bind(name, 'kernel', initializer, transposed ? 'gemm-t' : 'gemm', v.chw);
    if (bias) this.bind(name, 'bias', bias.initializer, 'vector');
    return t;
  }

  private gemm(node: OnnxNode): void {
    const v = this.val(node, 0);
    if (this.int(node, 'transA', 0) !== 0) throw fail(`${this.where(node)}: Gemm with transA = 1 is not supported`);
    if (this.float(node, 'alpha', 1) !== 1 || this.float(node, 'beta', 1) !== 1) throw fail(`${this.where(node)}: Gemm with alpha or beta other than 1 is not supported`);
    const B = this.weight(node, 1, 'weight');
    if (B.dims.length !== 2) throw fail(`${this.where(node)}: weight dims [${B.dims.join(', ')}] are not 2-D`);
    const transB = this.int(node, 'transB', 0) === 1;
    const [nin, nout] = transB ? [B.dims[1], B.dims[0]] : B.dims;
    const C = node.inputs[2] ? this.weight(node, 2, 'bias') : undefined;
    const t = this.dense(node, v, Float32Array.from(B.values), nin, nout, transB, B.initializer, C);
    this.set(node, { t, layout: 'flat', shape: [nout] });
  }

  private matmul(node: OnnxNode): void {
    const v = this.val(node, 0);
    const B = this.weight(node, 1, 'weight');
    if (B.dims.length !== 2) throw fail(`${this.where(node)}: MatMul weight dims [${B.dims.join(', ')}] are not 2-D`);
    const [nin, nout] = B.dims;
    // A single following Add of an initializer vector becomes the Dense bias.
    let bias: (Const & { initializer: string }) | undefined;
    let add: OnnxNode | undefined;
    if (this.uses.get(node.outputs[0]) === 1) {
      const next = this.onnx.graph.nodes.find((n) => n.opType === 'Add' && n.inputs.includes(node.outputs[0]));
      const other = next?.inputs.find((n) => n !== node.outputs[0]);
      const c = other !== undefined ? this.consts.get(other) : undefined;
      if (next && c?.initializer && c.values.length === nout && !this.bound.has(c.initializer) && c.dims[c.dims.length - 1] === nout) {
        bias = c as Const & { initializer: string };
        add = next;
      }
    }
    const t = this.dense(node, v, Float32Array.from(B.values), nin, nout, false, B.initializer, bias);
    this.set(node, { t, layout: 'flat', shape: [nout] });
    if (add) {
      this.foldedAdds.add(add);
      this.values.set(add.outputs[0], { t, layout: 'flat', shape: [nout] });
    }
  }

  private batchNorm(node: OnnxNode): void {
    const v = this.val(node, 0);
    if (v.layout !== 'nchw' && v.layout !== 'pooled' && !(v.layout === 'flat' && !v.chw)) {
      throw fail(`${this.where(node)}: BatchNormalization of a tensor of shape [batch, ${v.shape.join(', ')}] is not supported`);
    }
    if (this.int(node, 'training_mode', 0) !== 0) throw fail(`${this.where(node)}: BatchNormalization in training mode is not supported (export with training=TrainingMode.EVAL)`);
    this.requireUnused(node, 1);
    const channels = v.shape[0];
    const parts = ['scale', 'bias', 'mean', 'var'].map((what, k) => this.weight(node, k + 1, what));
    for (const p of parts) if (p.values.length !== channels) throw fail(`${this.where(node)}: '${p.initializer}' has ${p.values.length} values for ${channels} channels`);
    const name = this.layerName(node);
    const layer = tfl.layers.batchNormalization({ axis: -1, epsilon: this.float(node, 'epsilon', 1e-5), name });
    const t = layer.apply(v.t) as tfl.SymbolicTensor;
    const weights = parts.map((p) => tf.tensor1d(Float32Array.from(p.values)));
    layer.setWeights(weights);
    tf.dispose(weights);
    ['gamma', 'beta', 'moving_mean', 'moving_variance'].forEach((w, k) => this.bind(name, w, parts[k].initializer, 'vector'));
    this.set(node, { ...v, t });
  }

  private pool(node: OnnxNode): void {
    const v = this.val(node, 0);
    const [ch, hh, ww] = this.spatial(node, v);
    const kernel = this.ints(node, 'kernel_shape', []);
    const strides = this.ints(node, 'strides', [1, 1]);
    const pads = this.padsOf(node, [hh, ww], kernel, strides, [1, 1]);
    if (kernel.length !== 2) throw fail(`${this.where(node)}: only 2-D pooling is supported`);
    if (pads.some((p) => p !== 0)) throw fail(`${this.where(node)}: ${node.opType} with padding [${pads.join(', ')}] is not supported (only unpadded pooling)`);
    if (this.int(node, 'ceil_mode', 0) !== 0) throw fail(`${this.where(node)}: ${node.opType} with ceil_mode = 1 is not supported`);
    if (this.ints(node, 'dilations', [1, 1]).some((d) => d !== 1)) throw fail(`${this.where(node)}: dilated pooling is not supported`);
    const args = { poolSize: kernel as [number, number], strides: strides as [number, number], padding: 'valid' as const, name: this.layerName(node) };
    const layer = node.opType === 'MaxPool' ? tfl.layers.maxPooling2d(args) : tfl.layers.averagePooling2d(args);
    const outH = Math.floor((hh - kernel[0]) / strides[0]) + 1;
    const outW = Math.floor((ww - kernel[1]) / strides[1]) + 1;
    this.set(node, { t: layer.apply(v.t) as tfl.SymbolicTensor, layout: 'nchw', shape: [ch, outH, outW] });
  }

  private concat(node: OnnxNode): void {
    const vs = node.inputs.map((_, k) => this.val(node, k));
    const axis = this.int(node, 'axis', 1);
    const first = vs[0];
    const rank = first.layout === 'flat' ? 1 : 3;
    if (axis !== 1 && axis !== -(rank)) throw fail(`${this.where(node)}: Concat along axis ${axis} is not supported (only the channel/feature axis 1)`);
    for (const v of vs) {
      const same = v.layout === first.layout && v.shape.slice(1).join() === first.shape.slice(1).join();
      if (!same || v.chw || v.layout === 'nhwc') throw fail(`${this.where(node)}: Concat of tensors of shapes ${vs.map((u) => `[batch, ${u.shape.join(', ')}]`).join(', ')} is not supported`);
    }
    const t = tfl.layers.concatenate({ axis: -1, name: this.layerName(node) }).apply(vs.map((v) => v.t)) as tfl.SymbolicTensor;
    const shape = [vs.reduce((p, v) => p + v.shape[0], 0), ...first.shape.slice(1)];
    this.set(node, { t, layout: first.layout, shape });
  }

  private arithmetic(node: OnnxNode): void {
    const op = node.opType;
    const [n0, n1] = node.inputs;
    const v0 = this.values.get(n0);
    const v1 = this.values.get(n1);
    if (v0 && v1) {
      if (op !== 'Add') throw fail(`${this.where(node)}: ${op} of two computed tensors is not supported (only Add, e.g. a residual connection)`);
      if (v0.layout !== v1.layout || v0.shape.join() !== v1.shape.join() || (v0.chw?.join() ?? '') !== (v1.chw?.join() ?? '')) {
        throw fail(`${this.where(node)}: Add of tensors of shapes [batch, ${v0.shape.join(', ')}] and [batch, ${v1.shape.join(', ')}] is not supported (no broadcasting)`);
      }
      const t = tfl.layers.add({ name: this.layerName(node) }).apply([v0.t, v1.t]) as tfl.SymbolicTensor;
      return this.set(node, { ...v0, t });
    }
    // One computed tensor and one constant: y = a·x + b per channel/feature, as a frozen BatchNormalization.
    const v = v0 ?? v1;
    const k = this.consts.get(v0 ? n1 : n0);
    if (!v || !k) throw fail(`${this.where(node)}: input '${v0 ? n1 : n0}' is not a constant or computed tensor`);
    const width = v.layout === 'nhwc' ? v.shape[2] : v.shape[0];
    let per: number[] | undefined;
    if (v.layout === 'nhwc') per = k.values.length === 1 ? new Array<number>(width).fill(Number(k.values[0])) : undefined;
    else if (v.layout === 'nchw' || v.layout === 'pooled') per = channelVector(k, width);
    else if (v.layout === 'flat') per = k.values.length === 1 ? new Array<number>(width).fill(Number(k.values[0])) : !v.chw && k.values.length === width && k.dims.filter((d) => d !== 1).length <= 1 && k.dims[k.dims.length - 1] === width ? Array.from(k.values) : undefined;
    if (!per) throw fail(`${this.where(node)}: ${op} with a constant of dims [${k.dims.join(', ')}] on a tensor of shape [batch, ${v.shape.join(', ')}] is not supported (only scalars and per-channel constants)`);
    const constantFirst = !v0;
    let a: number[];
    let b: number[];
    if (op === 'Add') [a, b] = [per.map(() => 1), per];
    else if (op === 'Sub') [a, b] = constantFirst ? [per.map(() => -1), per] : [per.map(() => 1), per.map((p) => -p)];
    else if (op === 'Mul') [a, b] = [per, per.map(() => 0)];
    else {
      if (constantFirst) throw fail(`${this.where(node)}: division of a constant by a tensor is not supported`);
      [a, b] = [per.map((p) => 1 / p), per.map(() => 0)];
    }
    const layer = tfl.layers.batchNormalization({ axis: -1, epsilon: 0, trainable: false, name: this.layerName(node) });
    const t = layer.apply(v.t) as tfl.SymbolicTensor;
    const weights = [tf.tensor1d(a), tf.tensor1d(b), tf.zeros([width]), tf.ones([width])];
    layer.setWeights(weights);
    tf.dispose(weights);
    this.set(node, { ...v, t });
  }
}

/** Per-channel values of a scalar or [C,1,1] / [1,C,1,1] constant, or undefined. */
function channelVector(k: Const, channels: number): number[] | undefined {
  if (k.values.length === 1 && k.dims.length <= 4) return new Array<number>(channels).fill(Number(k.values[0]));
  const dims = k.dims;
  const perChannel = (dims.length === 3 && dims[0] === channels && dims[1] === 1 && dims[2] === 1) || (dims.length === 4 && dims[0] === 1 && dims[1] === channels && dims[2] === 1 && dims[3] === 1);
  return perChannel ? Array.from(k.values, Number) : undefined;
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'node';
}

function fmt(v: number): string {
  return String(Number(v.toPrecision(6)));
}

