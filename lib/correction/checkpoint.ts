/**
 * Atomic file and directory writes, and the checkpoint format of the correction loop.
 *
 * A checkpoint is a directory `<out>/checkpoint/` with `state.json` (the loop state, typed arrays
 * replaced by references) and `arrays.bin` (the arrays' bytes, 8-byte aligned). It is written into a
 * sibling temporary directory and swapped in by rename (lib/util/files.ts replaceDirAtomic), so a
 * reader sees the old or the new checkpoint, never a mixture; after a kill between the renames,
 * hasCheckpoint/loadCheckpoint first put the complete copy back in place (repairDir).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';
import { ioError, repairDir, replaceDirAtomic, type ReplaceDirOptions } from '../util/files.js';

// The crash-safe directory swap lives with the other file helpers; re-exported for the CLI.
export { replaceDirAtomic, repairDir } from '../util/files.js';

type ArrayCtor = Float64ArrayConstructor | Float32ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor | Uint32ArrayConstructor;
const DTYPES: Record<string, ArrayCtor> = {
  float64: Float64Array,
  float32: Float32Array,
  int32: Int32Array,
  uint8: Uint8Array,
  uint32: Uint32Array,
};

function dtypeOf(value: unknown): string | undefined {
  if (value instanceof Float64Array) return 'float64';
  if (value instanceof Float32Array) return 'float32';
  if (value instanceof Int32Array) return 'int32';
  if (value instanceof Uint8Array) return 'uint8';
  if (value instanceof Uint32Array) return 'uint32';
  return undefined;
}

interface ArrayRef {
  $array: { dtype: string; offset: number; length: number };
}

/**
 * Splits a JSON-like value with typed arrays into JSON text and the binary part as a list of byte
 * views (the arrays themselves, not copies, and zero padding to 8 bytes): concatenated they are
 * encodeBundle's binary. For writing a large state without copying it (saveCheckpoint); the views
 * alias the state's arrays, so they must be used before the state changes.
 */
export function encodeBundleParts(value: unknown): { json: string; parts: Uint8Array[]; bytes: number } {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const walk = (v: unknown): unknown => {
    const dtype = dtypeOf(v);
    if (dtype) {
      const array = v as Float64Array;
      const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
      const ref: ArrayRef = { $array: { dtype, offset, length: array.length } };
      parts.push(bytes);
      const padded = Math.ceil(bytes.byteLength / 8) * 8;
      if (padded > bytes.byteLength) parts.push(new Uint8Array(padded - bytes.byteLength));
      offset += padded;
      return ref;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(v)) if (inner !== undefined) out[key] = walk(inner);
      return out;
    }
    return v;
  };
  const tree = walk(value);
  return { json: JSON.stringify(tree), parts, bytes: offset };
}

/**
 * Splits a JSON-like value with typed arrays into JSON text and one binary buffer. Numbers that JSON
 * cannot hold (NaN, ±Infinity) are encoded as {"$number": "NaN"} etc., so state round-trips exactly.
 */
export function encodeBundle(value: unknown): { json: string; binary: Uint8Array } {
  const { json, parts, bytes } = encodeBundleParts(value);
  const binary = new Uint8Array(bytes);
  let at = 0;
  for (const part of parts) {
    binary.set(part, at);
    at += part.byteLength;
  }
  return { json, binary };
}

/** The inverse of {@link encodeBundle}. */
export function decodeBundle(json: string, binary: Uint8Array): unknown {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const record = v as Record<string, unknown>;
      if ('$array' in record) {
        const { dtype, offset, length } = (record as unknown as ArrayRef).$array;
        const Ctor = DTYPES[dtype];
        if (!Ctor) throw new AdvcorrectError('ERR_PARSE', `checkpoint: unknown array type ${dtype}`);
        const bytes = length * Ctor.BYTES_PER_ELEMENT;
        if (offset < 0 || offset + bytes > binary.byteLength) throw new AdvcorrectError('ERR_PARSE', 'checkpoint: array data is truncated');
        const copy = binary.slice(offset, offset + bytes);
        return new Ctor(copy.buffer, 0, length);
      }
      if ('$number' in record && Object.keys(record).length === 1) return Number(record.$number);
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(record)) out[key] = walk(inner);
      return out;
    }
    return v;
  };
  return walk(JSON.parse(json));
}

export const CHECKPOINT_DIR = 'checkpoint';
const CHECKPOINT_FORMAT = 'advcorrect-checkpoint';
const CHECKPOINT_VERSION = 1;

/** Writes `state` as `<outDir>/checkpoint` atomically (old checkpoint replaced only when the new one is complete). */
export async function saveCheckpoint(outDir: string, state: unknown, options: ReplaceDirOptions = {}): Promise<string> {
  const target = path.join(outDir, CHECKPOINT_DIR);
  // The arrays are written as they are, one after the other (no copy of the state: at 2·10⁷
  // parameters every w in it is 160 MB), and hashed on the way.
  const { json, parts, bytes } = encodeBundleParts(state);
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  const digest = hash.digest('hex');
  const writeSynced = async (file: string, data: Uint8Array[] | string): Promise<void> => {
    const handle = await fs.open(file, 'w');
    try {
      if (typeof data === 'string') await handle.writeFile(data);
      else {
        for (const part of data) {
          for (let at = 0; at < part.byteLength; ) at += (await handle.write(part, at, part.byteLength - at)).bytesWritten;
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  try {
    await replaceDirAtomic(
      target,
      async (tmp) => {
        await writeSynced(path.join(tmp, 'arrays.bin'), parts);
        const header = JSON.stringify({ format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, sha256: digest, bytes });
        await writeSynced(path.join(tmp, 'state.json'), `{"header":${header},"state":${json}}\n`);
      },
      options,
    );
  } catch (error) {
    throw ioError(`cannot write the checkpoint in ${outDir}`, error);
  }
  return target;
}

/** True when `<outDir>/checkpoint/state.json` exists. */
export async function hasCheckpoint(outDir: string): Promise<boolean> {
  await repairDir(path.join(outDir, CHECKPOINT_DIR));
  try {
    await fs.access(path.join(outDir, CHECKPOINT_DIR, 'state.json'));
    return true;
  } catch {
    return false;
  }
}

/** Reads a checkpoint written by {@link saveCheckpoint}; AdvcorrectError ERR_IO/ERR_PARSE when missing or damaged. */
export async function loadCheckpoint(outDir: string): Promise<unknown> {
  const dir = path.join(outDir, CHECKPOINT_DIR);
  await repairDir(dir);
  let text: string;
  let binary: Uint8Array;
  try {
    text = await fs.readFile(path.join(dir, 'state.json'), 'utf8');
    binary = new Uint8Array(await fs.readFile(path.join(dir, 'arrays.bin')));
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `No checkpoint to resume in ${outDir} (${(error as Error).message})`, { cause: error });
  }
  let parsed: { header?: { format?: string; version?: number; sha256?: string; bytes?: number }; state?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch (error) {
    throw new AdvcorrectError('ERR_PARSE', `The checkpoint in ${dir} is damaged: state.json is not JSON`, { cause: error });
  }
  const header = parsed.header;
  if (!header || header.format !== CHECKPOINT_FORMAT) throw new AdvcorrectError('ERR_PARSE', `${dir} does not hold an advcorrect checkpoint`);
  if (header.version !== CHECKPOINT_VERSION) {
    throw new AdvcorrectError('ERR_PARSE', `The checkpoint in ${dir} has version ${header.version}; this advcorrect reads version ${CHECKPOINT_VERSION}`);
  }
  if (header.bytes !== binary.byteLength || createHash('sha256').update(binary).digest('hex') !== header.sha256) {
    throw new AdvcorrectError('ERR_PARSE', `The checkpoint in ${dir} is damaged: arrays.bin does not match its checksum`);
  }
  // Re-encode the state part alone so that decodeBundle sees exactly what encodeBundle produced.
  return decodeBundle(JSON.stringify(parsed.state), binary);
}
