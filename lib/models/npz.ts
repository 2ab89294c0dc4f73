import { inflateRawSync } from 'node:zlib';
import { AdvcorrectError } from '../errors.js';
import { readFileCapped, writeFileAtomic } from '../util/files.js';

/** Largest .npz file read (2 GiB), and the largest array an entry may inflate to. */
export const NPZ_MAX_BYTES = 2 ** 31 - 1;

/** Position of the first NaN or ±Infinity in `data`, or −1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) return i; // NaN and ±Infinity only (v − v is 0 for every finite v)
  }
  return -1;
}

/** NumPy element types we read and write (little-endian, or single-byte). */
export type NpyDtype = 'float32' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** One array of an .npy/.npz file, in C (row-major) order. int64 values are converted to numbers. */
export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | number[];
}

const DESCR: Record<string, { dtype: NpyDtype; size: number }> = {
  '<f4': { dtype: 'float32', size: 4 },
  '<f8': { dtype: 'float64', size: 8 },
  '<i8': { dtype: 'int64', size: 8 },
  '<i4': { dtype: 'int32', size: 4 },
  '<i2': { dtype: 'int16', size: 2 },
  '|i1': { dtype: 'int8', size: 1 },
  '|u1': { dtype: 'uint8', size: 1 },
  '|b1': { dtype: 'bool', size: 1 },
};
const DESCR_OF: Record<NpyDtype, string> = Object.fromEntries(Object.entries(DESCR).map(([k, v]) => [v.dtype, k])) as Record<NpyDtype, string>;

/**
 * Refuses NaN and ±Infinity in an array: AdvcorrectError ERR_NON_FINITE naming it (`label`) and
 * the first bad element by its index in `shape` (C order).
 */
export function checkFiniteArray(data: ArrayLike<number>, shape: readonly number[], label: string): void {
  const at = firstNonFinite(data);
  if (at < 0) return;
  const index: number[] = [];
  let rest = at;
  for (let d = shape.length - 1; d >= 0; d--) {
    const size = shape[d] || 1;
    index.unshift(rest % size);
    rest = Math.floor(rest / size);
  }
  const where = shape.length > 0 ? `[${index.join(', ')}]` : '(the scalar)';
  throw new AdvcorrectError('ERR_NON_FINITE', `${label} holds ${data[at]} at ${where}: model weights must be finite numbers`);
}

/**
 * Parses one .npy file (format versions 1, 2 and 3). Float arrays must hold finite numbers
 * (ERR_NON_FINITE otherwise): every .npy we read is model weights.
 */
export function parseNpy(bytes: Uint8Array, what = 'npy'): NpyArray {
  const fail = (message: string): never => {
    throw new AdvcorrectError('ERR_DATA', `${what}: ${message}`);
  };
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) fail('not a .npy array (bad magic)');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) fail('truncated header');
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    return fail(`unsupported .npy format version ${major}`);
  }
  if (headerStart + headerLength > bytes.length) fail('truncated header');
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLength).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) return fail(`cannot parse header ${header.trim()}`);
  const type = DESCR[descr] ?? DESCR[descr.replace('=', '<')];
  if (!type) return fail(`unsupported dtype '${descr}' (little-endian float32/float64/int64/int32/int16/int8/uint8/bool only)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`bad shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  const end = start + count * type.size;
  if (end > bytes.length) fail(`truncated data: shape [${shape.join(', ')}] of ${type.dtype} needs ${count * type.size} bytes, ${bytes.length - start} present`);
  const body = new Uint8Array(bytes.subarray(start, end)); // aligned copy (Buffer.slice would be a view)
  let data: NpyArray['data'];
  switch (type.dtype) {
    case 'float32':
      data = new Float32Array(body.buffer, 0, count);
      break;
    case 'float64':
      data = new Float64Array(body.buffer, 0, count);
      break;
    case 'int32':
      data = new Int32Array(body.buffer, 0, count);
      break;
    case 'int16':
      data = new Int16Array(body.buffer, 0, count);
      break;
    case 'int8':
      data = new Int8Array(body.buffer, 0, count);
      break;
    case 'int64': {
      const big = new BigInt64Array(body.buffer, 0, count);
      data = Array.from(big, (v) => Number(v));
      break;
    }
    default:
      data = body;
  }
  if (fortran === 'True' && shape.length > 1) data = fortranToC(data, shape);
  if (type.dtype === 'float32' || type.dtype === 'float64') checkFiniteArray(data as ArrayLike<number>, shape, what);
  return { dtype: type.dtype, shape, data };
}

function fortranToC(data: NpyArray['data'], shape: number[]): NpyArray['data'] {
  const out = data instanceof Array ? new Array<number>(data.length) : new (data.constructor as new (n: number) => typeof data)(data.length);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  for (let c = 0; c < data.length; c++) {
    // c is the C-order position of `index`; compute its Fortran-order position.
    let f = 0;
    for (let d = rank - 1; d >= 0; d--) f = f * shape[d] + index[d];
    (out as number[])[c] = (data as number[])[f];
    for (let d = rank - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Serialises an array as .npy version 1.0 (C order, little-endian). */
export function encodeNpy(array: NpyArray): Buffer {
  const descr = DESCR_OF[array.dtype];
  if (!descr) throw new TypeError(`unsupported dtype ${array.dtype}`);
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) throw new RangeError(`data has ${array.data.length} values, shape [${array.shape.join(', ')}] needs ${count}`);
  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const size = DESCR[descr].size;
  const out = Buffer.alloc(10 + header.length + count * size);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  const view = new DataView(out.buffer, out.byteOffset + 10 + header.length, count * size);
  for (let i = 0; i < count; i++) {
    const v = Number(array.data[i]);
    switch (array.dtype) {
      case 'float32':
        view.setFloat32(i * 4, v, true);
        break;
      case 'float64':
        view.setFloat64(i * 8, v, true);
        break;
      case 'int64':
        view.setBigInt64(i * 8, BigInt(Math.trunc(v)), true);
        break;
      case 'int32':
        view.setInt32(i * 4, v, true);
        break;
      case 'int16':
        view.setInt16(i * 2, v, true);
        break;
      case 'int8':
        view.setInt8(i, v);
        break;
      default:
        view.setUint8(i, v);
    }
  }
  return out;
}

/** Names and raw bytes of the entries of a zip archive (stored or deflated entries). */
export function unzip(zip: Uint8Array, what = 'zip'): Map<string, Uint8Array> {
  try {
    return unzipUnchecked(zip, what);
  } catch (error) {
    if (error instanceof AdvcorrectError) throw error;
    // A read past the end of the buffer (an offset field that points outside the archive).
    throw new AdvcorrectError('ERR_DATA', `${what}: corrupt zip/npz archive (${(error as Error).message})`, { cause: error });
  }
}

function unzipUnchecked(zip: Uint8Array, what: string): Map<string, Uint8Array> {
  const fail = (message: string): never => {
    throw new AdvcorrectError('ERR_DATA', `${what}: ${message}`);
  };
  const buf = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('not a zip/npz archive (no end-of-central-directory record; truncated?)');
  let entries = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || entries === 0xffff) {
    // Zip64: the zip64 end record locator sits just before the EOCD.
    const locator = eocd - 20;
    if (locator < 0 || buf.readUInt32LE(locator) !== 0x07064b50) fail('bad zip64 archive');
    const record = Number(buf.readBigUInt64LE(locator + 8));
    entries = Number(buf.readBigUInt64LE(record + 32));
    cdOffset = Number(buf.readBigUInt64LE(record + 48));
  }
  const out = new Map<string, Uint8Array>();
  let p = cdOffset;
  for (let e = 0; e < entries; e++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) fail('corrupt central directory');
    const method = buf.readUInt16LE(p + 10);
    let compressed = buf.readUInt32LE(p + 20);
    let uncompressed = buf.readUInt32LE(p + 24);
    const nameLength = buf.readUInt16LE(p + 28);
    const extraLength = buf.readUInt16LE(p + 30);
    const commentLength = buf.readUInt16LE(p + 32);
    let local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLength);
    // Zip64 extended information extra field (id 1): the 0xffffffff fields, in order.
    let x = p + 46 + nameLength;
    const extraEnd = x + extraLength;
    while (x + 4 <= extraEnd) {
      const id = buf.readUInt16LE(x);
      const size = buf.readUInt16LE(x + 2);
      if (id === 1) {
        let q = x + 4;
        if (uncompressed === 0xffffffff) (uncompressed = Number(buf.readBigUInt64LE(q))), (q += 8);
        if (compressed === 0xffffffff) (compressed = Number(buf.readBigUInt64LE(q))), (q += 8);
        if (local === 0xffffffff) local = Number(buf.readBigUInt64LE(q));
      }
      x += 4 + size;
    }
    p = extraEnd + commentLength;
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50) fail(`corrupt local header of ${name}`);
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (dataStart + compressed > buf.length) fail(`truncated entry ${name}`);
    const raw = buf.subarray(dataStart, dataStart + compressed);
    let data: Uint8Array;
    if (method === 0) data = raw;
    else if (method === 8) {
      if (uncompressed > NPZ_MAX_BYTES) fail(`entry ${name} would inflate to ${uncompressed} bytes, more than the limit of ${NPZ_MAX_BYTES}`);
      try {
        // Never more than the entry says (+1 to notice a lie): a zip bomb stops here.
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, uncompressed + 1) });
      } catch (error) {
        return fail(`corrupt deflate data in ${name} (${(error as Error).message})`);
      }
    } else return fail(`entry ${name} uses compression method ${method} (only stored and deflate are supported)`);
    if (data.length !== uncompressed) fail(`entry ${name} has ${data.length} bytes, expected ${uncompressed}`);
    out.set(name, data);
  }
  return out;
}

/** Parses an .npz archive (a zip of .npy files): array name (without .npy) → array. */
export function parseNpz(bytes: Uint8Array, what = 'npz'): Map<string, NpyArray> {
  const arrays = new Map<string, NpyArray>();
  for (const [name, data] of unzip(bytes, what)) {
    const key = name.endsWith('.npy') ? name.slice(0, -4) : name;
    arrays.set(key, parseNpy(data, `${what}:${key}`));
  }
  return arrays;
}

/** Reads an .npz file from disk. */
export async function readNpz(file: string, options: { maxBytes?: number } = {}): Promise<Map<string, NpyArray>> {
  if (typeof file !== 'string' || file === '') throw new TypeError('file must be a non-empty string');
  const bytes = await readFileCapped(file, '.npz file', options.maxBytes ?? NPZ_MAX_BYTES);
  return parseNpz(bytes, file);
}

let crcTable: Uint32Array | undefined;
function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Builds an .npz archive (stored entries, like numpy.savez) from named arrays, in insertion order. */
export function encodeNpz(arrays: Map<string, NpyArray> | Record<string, NpyArray>): Buffer {
  const list = arrays instanceof Map ? [...arrays] : Object.entries(arrays);
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [key, array] of list) {
    const name = Buffer.from(`${key}.npy`, 'utf8');
    const data = encodeNpy(array);
    if (data.length >= 0xffffffff) throw new RangeError(`array ${key} is too large for a non-zip64 archive`);
    const crc = crc32(data);
    const local = Buffer.alloc(30 + name.length);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x21, 12); // date 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    name.copy(local, 30);
    const central = Buffer.alloc(46 + name.length);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    name.copy(central, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(list.length, 8);
  end.writeUInt16LE(list.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Writes an .npz archive atomically. */
export async function writeNpz(file: string, arrays: Map<string, NpyArray> | Record<string, NpyArray>): Promise<void> {
  await writeFileAtomic(file, encodeNpz(arrays));
}
