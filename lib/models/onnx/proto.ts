/**
 * A small protobuf wire-format reader and writer for the ONNX messages advcorrect needs
 * (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto,
 * OperatorSetIdProto). Field numbers follow the published onnx.proto schema. Every decoded message
 * keeps the byte range of each of its fields, so that a model can be written back with new
 * initializer values and every other byte unchanged (see export.ts).
 */
import { AdvcorrectError } from '../../errors.js';

/** One field occurrence of a message: its number, wire type and where its bytes are. */
export interface WireField {
  field: number;
  wire: 0 | 1 | 2 | 5;
  /** Offset of the tag (start of the whole field) in the buffer. */
  start: number;
  /** Offset just past the field. */
  end: number;
  /** Varint value (wire 0). */
  varint?: bigint;
  /** Payload bytes (wire 1, 2 and 5). */
  bytes?: Uint8Array;
}

function truncated(what: string): AdvcorrectError {
  return new AdvcorrectError('ERR_ONNX', `${what}: truncated or not an ONNX file (malformed protobuf)`);
}

function readVarint(buf: Uint8Array, pos: number, what: string): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw truncated(what);
    const byte = buf[pos++];
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
  throw truncated(what);
}

/** Splits a message into its fields; throws ERR_ONNX on malformed or truncated bytes. */
export function readFields(buf: Uint8Array, what: string): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, afterTag] = readVarint(buf, pos, what);
    pos = afterTag;
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (field === 0) throw truncated(what);
    if (wire === 0) {
      const [value, next] = readVarint(buf, pos, what);
      pos = next;
      fields.push({ field, wire, start, end: pos, varint: value });
    } else if (wire === 2) {
      const [length, next] = readVarint(buf, pos, what);
      const end = next + Number(length);
      if (length > BigInt(buf.length) || end > buf.length) throw truncated(what);
      fields.push({ field, wire, start, end, bytes: buf.subarray(next, end) });
      pos = end;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      if (pos + size > buf.length) throw truncated(what);
      fields.push({ field, wire, start, end: pos + size, bytes: buf.subarray(pos, pos + size) });
      pos += size;
    } else {
      throw truncated(what);
    }
  }
  return fields;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

function str(f: WireField): string {
  return f.bytes ? decoder.decode(f.bytes) : '';
}

function int(f: WireField): number {
  if (f.varint === undefined) return 0;
  return Number(BigInt.asIntN(64, f.varint));
}

/** Repeated int64: packed (wire 2) or one per field (wire 0). */
function pushInts(f: WireField, out: number[], what: string): void {
  if (f.wire === 0) out.push(int(f));
  else if (f.wire === 2 && f.bytes) {
    let pos = 0;
    while (pos < f.bytes.length) {
      const [v, next] = readVarint(f.bytes, pos, what);
      out.push(Number(BigInt.asIntN(64, v)));
      pos = next;
    }
  }
}

function float32Of(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes);
  return new Float32Array(copy.buffer, 0, copy.length >> 2);
}

/** Repeated float: packed (wire 2) or one per field (wire 5). */
function pushFloats(f: WireField, out: number[]): void {
  if (!f.bytes) return;
  for (const v of float32Of(f.bytes)) out.push(v);
}

// ---------------------------------------------------------------------------------------------
// ONNX messages (only the fields advcorrect reads)

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, BOOL: 9, DOUBLE: 11 } as const;

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Values as numbers (float types as float32, integer types exactly up to 2^53). */
  values: Float32Array | number[];
  /** True when the tensor's data lives in an external file (not supported). */
  external: boolean;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  t?: OnnxTensor;
  floats: number[];
  ints: number[];
  /** A subgraph attribute (If/Loop): never supported, kept to name it in the error. */
  hasGraph: boolean;
}

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

export interface OnnxValueInfo {
  name: string;
  elemType: number;
  /** Dimensions: a number when fixed, a string (dim_param) or null when unknown; undefined shape = no shape. */
  shape?: Array<number | string | null>;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  producer: string;
  /** Opset version of the default (ai.onnx) domain. */
  opset: number;
  graph: OnnxGraph;
}

/** AttributeProto.AttributeType values. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export function decodeTensor(buf: Uint8Array, what: string): OnnxTensor {
  const tensor: OnnxTensor = { name: '', dims: [], dataType: 0, values: [], external: false };
  let raw: Uint8Array | undefined;
  const floats: number[] = [];
  const ints: number[] = [];
  const doubles: number[] = [];
  for (const f of readFields(buf, what)) {
    switch (f.field) {
      case 1: pushInts(f, tensor.dims, what); break;
      case 2: tensor.dataType = int(f); break;
      case 4: pushFloats(f, floats); break;
      case 5: case 7: pushInts(f, ints, what); break;
      case 8: tensor.name = str(f); break;
      case 9: raw = f.bytes; break;
      case 10: {
        if (f.bytes) {
          const copy = new Uint8Array(f.bytes);
          doubles.push(...new Float64Array(copy.buffer, 0, copy.length >> 3));
        }
        break;
      }
      case 14: tensor.external = int(f) === 1; break;
      default: break;
    }
  }
  const count = tensor.dims.reduce((a, b) => a * b, 1);
  if (tensor.dataType === DataType.FLOAT) {
    tensor.values = raw ? float32Of(raw) : Float32Array.from(floats);
  } else if (tensor.dataType === DataType.DOUBLE) {
    tensor.values = raw ? Float32Array.from(new Float64Array(new Uint8Array(raw).buffer, 0, raw.length >> 3)) : Float32Array.from(doubles);
  } else if (tensor.dataType === DataType.INT64) {
    if (raw) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      tensor.values = Array.from({ length: raw.length >> 3 }, (_, k) => Number(view.getBigInt64(8 * k, true)));
    } else tensor.values = ints;
  } else if (tensor.dataType === DataType.BOOL || tensor.dataType === DataType.UINT8) {
    tensor.values = raw ? Array.from(raw) : ints;
  } else if (tensor.dataType === DataType.INT32) {
    if (raw) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      tensor.values = Array.from({ length: raw.length >> 2 }, (_, k) => view.getInt32(4 * k, true));
    } else tensor.values = ints;
  }
  if (!tensor.external && tensor.values.length !== count && ([DataType.FLOAT, DataType.UINT8, DataType.INT32, DataType.INT64, DataType.BOOL, DataType.DOUBLE] as number[]).includes(tensor.dataType)) {
    throw new AdvcorrectError('ERR_ONNX', `${what}: tensor '${tensor.name}' has ${tensor.values.length} values for dims [${tensor.dims.join(', ')}] (truncated?)`);
  }
  return tensor;
}

function decodeAttribute(buf: Uint8Array, what: string): OnnxAttribute {
  const a: OnnxAttribute = { name: '', type: 0, floats: [], ints: [], hasGraph: false };
  for (const f of readFields(buf, what)) {
    switch (f.field) {
      case 1: a.name = str(f); break;
      case 20: a.type = int(f); break;
      case 2: a.f = f.bytes ? float32Of(f.bytes)[0] : 0; break;
      case 3: a.i = int(f); break;
      case 4: a.s = str(f); break;
      case 5: a.t = decodeTensor(f.bytes ?? new Uint8Array(), what); break;
      case 6: case 11: a.hasGraph = true; break;
      case 7: pushFloats(f, a.floats); break;
      case 8: pushInts(f, a.ints, what); break;
      default: break;
    }
  }
  return a;
}

export function decodeNode(buf: Uint8Array, what: string): OnnxNode {
  const node: OnnxNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: new Map() };
  for (const f of readFields(buf, what)) {
    switch (f.field) {
      case 1: node.inputs.push(str(f)); break;
      case 2: node.outputs.push(str(f)); break;
      case 3: node.name = str(f); break;
      case 4: node.opType = str(f); break;
      case 7: node.domain = str(f); break;
      case 5: {
        const attribute = decodeAttribute(f.bytes ?? new Uint8Array(), what);
        node.attributes.set(attribute.name, attribute);
        break;
      }
      default: break;
    }
  }
  return node;
}

function decodeValueInfo(buf: Uint8Array, what: string): OnnxValueInfo {
  const info: OnnxValueInfo = { name: '', elemType: 0 };
  for (const f of readFields(buf, what)) {
    if (f.field === 1) info.name = str(f);
    if (f.field !== 2 || !f.bytes) continue;
    // TypeProto: tensor_type = 1 → { elem_type = 1, shape = 2 → { dim = 1 → { dim_value = 1, dim_param = 2 } } }
    for (const t of readFields(f.bytes, what)) {
      if (t.field !== 1 || !t.bytes) continue;
      for (const tt of readFields(t.bytes, what)) {
        if (tt.field === 1) info.elemType = int(tt);
        if (tt.field !== 2 || !tt.bytes) continue;
        info.shape = [];
        for (const d of readFields(tt.bytes, what)) {
          if (d.field !== 1 || !d.bytes) continue;
          let dim: number | string | null = null;
          for (const dd of readFields(d.bytes, what)) {
            if (dd.field === 1) dim = int(dd);
            if (dd.field === 2) dim = str(dd);
          }
          info.shape.push(dim);
        }
      }
    }
  }
  return info;
}

/** The graph field (number 7) of a ModelProto and the initializer fields (number 5) of the graph. */
export const MODEL_GRAPH_FIELD = 7;
export const GRAPH_INITIALIZER_FIELD = 5;

/** Decodes a ModelProto; throws ERR_ONNX when the bytes are not an ONNX model. */
export function decodeModel(buf: Uint8Array, what: string): OnnxModel {
  let irVersion = 0;
  let producer = '';
  let opset = -1;
  let graphBytes: Uint8Array | undefined;
  for (const f of readFields(buf, what)) {
    if (f.field === 1 && f.wire === 0) irVersion = int(f);
    else if (f.field === 2 && f.wire === 2) producer = str(f);
    else if (f.field === 8 && f.wire === 2 && f.bytes) {
      let domain = '';
      let version = 0;
      for (const o of readFields(f.bytes, what)) {
        if (o.field === 1) domain = str(o);
        if (o.field === 2) version = int(o);
      }
      if (domain === '' || domain === 'ai.onnx') opset = version;
    } else if (f.field === MODEL_GRAPH_FIELD && f.wire === 2) graphBytes = f.bytes;
  }
  if (irVersion <= 0 || !graphBytes) throw new AdvcorrectError('ERR_ONNX', `${what}: not an ONNX model (no IR version or no graph)`);
  const graph: OnnxGraph = { name: '', nodes: [], initializers: new Map(), inputs: [], outputs: [] };
  for (const f of readFields(graphBytes, what)) {
    if (f.wire !== 2 || !f.bytes) continue;
    if (f.field === 1) graph.nodes.push(decodeNode(f.bytes, what));
    else if (f.field === 2) graph.name = str(f);
    else if (f.field === GRAPH_INITIALIZER_FIELD) {
      const t = decodeTensor(f.bytes, what);
      graph.initializers.set(t.name, t);
    } else if (f.field === 11) graph.inputs.push(decodeValueInfo(f.bytes, what));
    else if (f.field === 12) graph.outputs.push(decodeValueInfo(f.bytes, what));
  }
  return { irVersion, producer, opset, graph };
}

// ---------------------------------------------------------------------------------------------
// Writing

function encodeVarint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** A length-delimited field (wire type 2) with the given payload. */
export function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  const head = [...encodeVarint(field * 8 + 2), ...encodeVarint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/**
 * Re-encodes a float TensorProto with new values: every field is copied byte for byte except the
 * data fields (float_data 4, raw_data 9, double_data 10), replaced by one raw_data holding the
 * little-endian float32 values; data_type is set to FLOAT if it was DOUBLE.
 */
export function replaceTensorData(buf: Uint8Array, values: Float32Array, what: string): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of readFields(buf, what)) {
    if (f.field === 4 || f.field === 9 || f.field === 10) continue;
    if (f.field === 2) {
      parts.push(new Uint8Array([...encodeVarint(2 * 8 + 0), ...encodeVarint(DataType.FLOAT)]));
      continue;
    }
    parts.push(buf.subarray(f.start, f.end));
  }
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, k) => view.setFloat32(4 * k, v, true));
  parts.push(lengthDelimited(9, raw));
  return concatBytes(parts);
}
