import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { AdvcorrectError } from '../errors.js';
import { writeFileAtomic } from '../util/files.js';

const gunzipAsync = promisify(gunzip);

/** Element types of the IDX format (the third byte of the magic number). */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

const TYPE_CODES: Record<IdxDtype, number> = { uint8: 0x08, int8: 0x09, int16: 0x0b, int32: 0x0c, float32: 0x0d, float64: 0x0e };
const ELEMENT_SIZE: Record<IdxDtype, number> = { uint8: 1, int8: 1, int16: 2, int32: 4, float32: 4, float64: 8 };

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** An IDX array: element type, dimensions (first = count), and the values in row-major order. */
export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  data: IdxData;
}

function dtypeOfCode(code: number): IdxDtype | undefined {
  return (Object.keys(TYPE_CODES) as IdxDtype[]).find((key) => TYPE_CODES[key] === code);
}

/**
 * Parses an IDX file held in memory (big-endian values, as the format specifies).
 * `what` names the source in error messages.
 */
export function parseIdx(buffer: Uint8Array, what = 'IDX data'): IdxArray {
  const fail = (message: string): never => {
    throw new AdvcorrectError('ERR_DATA', `${what}: ${message}`);
  };
  if (buffer.length < 4) fail(`too short for an IDX header (${buffer.length} bytes)`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const magic = view.getUint32(0, false);
  const dtype = dtypeOfCode(buffer[2]);
  const rank = buffer[3];
  if (buffer[0] !== 0 || buffer[1] !== 0 || dtype === undefined || rank === 0) {
    fail(`wrong magic number 0x${magic.toString(16).padStart(8, '0')} (not an IDX file; expected 0x000008NN for unsigned bytes)`);
  }
  const headerBytes = 4 + 4 * rank;
  if (buffer.length < headerBytes) fail(`truncated header: ${rank} dimensions need ${headerBytes} bytes, file has ${buffer.length}`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const elements = dims.reduce((a, b) => a * b, 1);
  const type = dtype as IdxDtype;
  const expected = headerBytes + elements * ELEMENT_SIZE[type];
  if (buffer.length < expected) {
    fail(`truncated: dimensions [${dims.join(', ')}] of ${type} need ${expected} bytes, file has ${buffer.length}`);
  }
  if (buffer.length > expected) fail(`${buffer.length - expected} unexpected bytes after the data of dimensions [${dims.join(', ')}]`);
  const body = buffer.subarray(headerBytes, expected);
  let data: IdxData;
  switch (type) {
    case 'uint8':
      data = new Uint8Array(body); // copy: callers may keep it after the file buffer is gone
      break;
    case 'int8':
      data = new Int8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
      break;
    default: {
      const size = ELEMENT_SIZE[type];
      const bodyView = new DataView(body.buffer, body.byteOffset, body.byteLength);
      if (type === 'int16') {
        const out = new Int16Array(elements);
        for (let i = 0; i < elements; i++) out[i] = bodyView.getInt16(i * size, false);
        data = out;
      } else if (type === 'int32') {
        const out = new Int32Array(elements);
        for (let i = 0; i < elements; i++) out[i] = bodyView.getInt32(i * size, false);
        data = out;
      } else if (type === 'float32') {
        const out = new Float32Array(elements);
        for (let i = 0; i < elements; i++) out[i] = bodyView.getFloat32(i * size, false);
        data = out;
      } else {
        const out = new Float64Array(elements);
        for (let i = 0; i < elements; i++) out[i] = bodyView.getFloat64(i * size, false);
        data = out;
      }
    }
  }
  if (type === 'float32' || type === 'float64') {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v - v !== 0) fail(`element ${i} is ${v}: IDX data must hold finite numbers`);
    }
  }
  return { dtype: type, dims, data };
}

/** Serialises an IDX array (big-endian). */
export function encodeIdx(array: IdxArray): Buffer {
  const { dtype, dims, data } = array;
  if (!(dtype in TYPE_CODES)) throw new TypeError(`dtype must be one of ${Object.keys(TYPE_CODES).join(', ')}`);
  if (!Array.isArray(dims) || dims.length === 0 || dims.length > 255) throw new RangeError('dims must have 1 to 255 entries');
  for (const d of dims) if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) throw new RangeError('dims must be non-negative 32-bit integers');
  const elements = dims.reduce((a, b) => a * b, 1);
  if (data.length !== elements) throw new RangeError(`data has ${data.length} values, dims [${dims.join(', ')}] need ${elements}`);
  const size = ELEMENT_SIZE[dtype];
  const header = 4 + 4 * dims.length;
  const out = Buffer.alloc(header + elements * size);
  out[2] = TYPE_CODES[dtype];
  out[3] = dims.length;
  dims.forEach((d, i) => out.writeUInt32BE(d, 4 + 4 * i));
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < elements; i++) {
    const v = data[i];
    const at = header + i * size;
    switch (dtype) {
      case 'uint8':
        view.setUint8(at, v);
        break;
      case 'int8':
        view.setInt8(at, v);
        break;
      case 'int16':
        view.setInt16(at, v, false);
        break;
      case 'int32':
        view.setInt32(at, v, false);
        break;
      case 'float32':
        view.setFloat32(at, v, false);
        break;
      case 'float64':
        view.setFloat64(at, v, false);
        break;
    }
  }
  return out;
}

/** Reads an IDX file from disk; gzipped files (`.gz`, or a gzip signature) are inflated first. */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (error) {
      throw new AdvcorrectError('ERR_DATA', `${file}: corrupt gzip data (${(error as Error).message})`, { cause: error });
    }
  }
  return parseIdx(bytes, file);
}

/** Writes an IDX file atomically (temp file + rename). */
export async function writeIdx(file: string, array: IdxArray): Promise<void> {
  await writeFileAtomic(file, encodeIdx(array));
}
