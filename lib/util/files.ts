import { mkdir, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';

/**
 * The one-line reason of an fs failure: "not a directory", "permission denied", "no space left on
 * device", … instead of Node's "ENOTDIR: not a directory, mkdir '/x/y'".
 */
export function fsReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    case 'EEXIST':
      return 'a file of that name is in the way';
    case 'EISDIR':
      return 'it is a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOENT':
      return 'no such file or directory';
    case 'EDQUOT':
      return 'disk quota exceeded';
    default:
      return e?.message ?? String(error);
  }
}

/** An AdvcorrectError ERR_IO for an fs failure; typed errors and AdvcorrectErrors pass through. */
export function ioError(what: string, error: unknown): Error {
  if (error instanceof AdvcorrectError || error instanceof TypeError || error instanceof RangeError) return error;
  return new AdvcorrectError('ERR_IO', `${what}: ${fsReason(error)}`, { cause: error });
}

/**
 * Makes sure `dir` is a directory (creating it and its parents), or throws AdvcorrectError ERR_IO
 * saying why not: a file in the way, no permission, no space.
 */
export async function ensureDir(dir: string): Promise<void> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('dir must be a non-empty string');
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw ioError(`cannot create the directory ${dir}`, error);
  }
  // mkdir -p succeeds silently on an existing directory, and fails with EEXIST on a file.
  const info = await stat(dir).catch((error: unknown) => {
    throw ioError(`cannot use the directory ${dir}`, error);
  });
  if (!info.isDirectory()) throw new AdvcorrectError('ERR_IO', `cannot use ${dir} as a directory: it is a file`);
}

/**
 * Writes a file atomically: a temporary sibling, fsync, rename over the target, so a reader (or a
 * crash) sees the old file or the new one, never a half-written one.
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw new AdvcorrectError('ERR_IO', `cannot write ${file}: ${fsReason(error)}`, { cause: error });
  }
}

/** Largest input files the readers accept unless told otherwise (a clear error instead of a dead heap). */
export const DEFAULT_MAX_FILE_BYTES = 2 ** 30;

/**
 * Reads a whole file, refusing more than `maxBytes` (default {@link DEFAULT_MAX_FILE_BYTES}) with
 * AdvcorrectError ERR_TOO_LARGE. Reads in chunks, so devices and pipes that never end
 * (`/dev/zero`) stop at the cap too. `what` names the kind of file in the message.
 */
export async function readFileCapped(file: string, what: string, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<Buffer> {
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw ioError(`cannot read ${file}`, error);
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) throw new AdvcorrectError('ERR_IO', `cannot read ${file}: it is a directory`);
    const tooLarge = (): AdvcorrectError =>
      new AdvcorrectError(
        'ERR_TOO_LARGE',
        `${file} is larger than ${formatBytes(maxBytes)}, the limit for a ${what}` + (info.isFile() ? ` (it has ${formatBytes(info.size)})` : ''),
      );
    if (info.isFile() && info.size > maxBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    const chunkSize = info.isFile() ? Math.max(1, Math.min(info.size + 1, 1 << 24)) : 1 << 23;
    for (;;) {
      const buffer = Buffer.allocUnsafe(Math.min(chunkSize, maxBytes + 1 - total));
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, buffer.length, null));
      } catch (error) {
        throw ioError(`cannot read ${file}`, error);
      }
      if (bytesRead === 0) break;
      chunks.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw tooLarge();
    }
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(bytes % 2 ** 30 === 0 ? 0 : 1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(bytes % 2 ** 20 === 0 ? 0 : 1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(bytes % 2 ** 10 === 0 ? 0 : 1)} KiB`;
  return `${bytes} bytes`;
}

/**
 * Resolves `name`, a path written inside a file that lives in `dir` (a weights path in model.json,
 * a file named by a manifest or run.json), and refuses it unless it stays inside `dir`: no
 * absolute path, no `..` that climbs out, and no symbolic link that leads out (checked on the real
 * paths when the file exists). Throws AdvcorrectError ERR_MODEL naming `source`.
 */
export async function resolveInside(dir: string, name: unknown, source: string): Promise<string> {
  if (typeof name !== 'string' || name === '') throw new AdvcorrectError('ERR_MODEL', `${source}: a file path must be a non-empty string`);
  if (name.includes('\0')) throw new AdvcorrectError('ERR_MODEL', `${source}: the path ${JSON.stringify(name)} holds a NUL byte`);
  if (path.isAbsolute(name) || path.win32.isAbsolute(name))
    throw new AdvcorrectError('ERR_MODEL', `${source}: the path ${JSON.stringify(name)} is absolute; files must be named relative to ${dir}`);
  const base = path.resolve(dir);
  const resolved = path.resolve(base, name);
  if (!isInside(base, resolved))
    throw new AdvcorrectError('ERR_MODEL', `${source}: the path ${JSON.stringify(name)} leads outside ${dir}`);
  // Symbolic links: compare real paths (a missing file is reported by the reader later).
  let realBase: string;
  try {
    realBase = await realpath(base);
  } catch {
    return resolved;
  }
  let realFile: string;
  try {
    realFile = await realpath(resolved);
  } catch {
    return resolved;
  }
  if (!isInside(realBase, realFile))
    throw new AdvcorrectError('ERR_MODEL', `${source}: the path ${JSON.stringify(name)} is a symbolic link that leads outside ${dir}`);
  return resolved;
}

function isInside(base: string, file: string): boolean {
  const rel = path.relative(base, file);
  return rel !== '' && !rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel);
}

// ---------------------------------------------------------------------------------------------
// Crash-safe directory replacement

/** Steps of {@link replaceDirAtomic}, in order, for tests that stop the process between them. */
export type ReplaceDirStep = 'filled' | 'completed' | 'moved-old' | 'moved-new' | 'removed-old';

export interface ReplaceDirOptions {
  /** Called after each step (testing: a child process kills itself there). */
  onStep?: (step: ReplaceDirStep) => void | Promise<void>;
}

const TEMP_RE = /^\.(.+)\.(\d+)\.([0-9a-f]{8})\.(tmp|new|old)$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Leftovers of an interrupted {@link replaceDirAtomic} on `target`, and the repair: when `target`
 * is missing (a kill between the two renames), the complete new copy (`.NAME.PID.TAG.new`, else
 * the previous one, `.old`) is renamed back into place. Temporaries of processes that are gone
 * (`.tmp` half-filled, `.new`, `.old`) are removed. Returns true when it moved a copy into place.
 */
export async function repairDir(target: string): Promise<boolean> {
  const parent = path.dirname(target);
  const name = path.basename(target);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return false;
  }
  const stale: Array<{ file: string; kind: string; pid: number; mtime: number }> = [];
  for (const entry of entries) {
    const match = TEMP_RE.exec(entry);
    if (!match || match[1] !== name) continue;
    const pid = Number(match[2]);
    if (processAlive(pid) && pid !== process.pid) continue; // another run is writing right now
    const file = path.join(parent, entry);
    const info = await stat(file).catch(() => undefined);
    if (!info) continue;
    stale.push({ file, kind: match[4], pid, mtime: info.mtimeMs });
  }
  if (stale.length === 0) return false;
  let restored = false;
  const exists = await stat(target).then(
    () => true,
    () => false,
  );
  if (!exists) {
    // Newest complete copy first: a '.new' is newer than any '.old' of the same swap.
    const pick = (kind: string) => stale.filter((s) => s.kind === kind).sort((a, b) => b.mtime - a.mtime)[0];
    const copy = pick('new') ?? pick('old');
    if (copy) {
      try {
        await rename(copy.file, target);
        restored = true;
        stale.splice(stale.indexOf(copy), 1);
      } catch (error) {
        throw ioError(`cannot repair ${target} from ${copy.file}`, error);
      }
    }
  }
  for (const s of stale) {
    if (s.pid === process.pid) continue; // ours: an operation of this process may still be using it
    await rm(s.file, { recursive: true, force: true }).catch(() => undefined);
  }
  return restored;
}

/**
 * Replaces directory `target` by one that `fill` writes, so that a crash or kill at any point
 * leaves either the old or the new directory, or a layout {@link repairDir} (run first by this
 * function, and by readers such as loadCheckpoint) turns back into one:
 *   1. `fill` writes a fresh sibling `.NAME.PID.TAG.tmp` (a kill here leaves a `.tmp`, removed later);
 *   2. it is renamed to `.NAME.PID.TAG.new`: complete;
 *   3. the old target (if any) is renamed to `.NAME.PID.TAG.old`;
 *   4. `.new` is renamed to the target;
 *   5. `.old` is removed.
 * Between 3 and 4 there is no target; repairDir renames `.new` into place. On a failure of `fill`
 * the temporary directory is removed and the old target is left untouched. fs failures become
 * AdvcorrectError ERR_IO with a one-line reason.
 */
export async function replaceDirAtomic(target: string, fill: (tmpDir: string) => Promise<void>, options: ReplaceDirOptions = {}): Promise<void> {
  if (typeof target !== 'string' || target === '') throw new TypeError('target must be a non-empty string');
  if (typeof fill !== 'function') throw new TypeError('fill must be a function');
  const step = async (name: ReplaceDirStep): Promise<void> => {
    if (options.onStep) await options.onStep(name);
  };
  const parent = path.dirname(target);
  await ensureDir(parent);
  await repairDir(target);
  const tag = `${process.pid}.${randomBytes(4).toString('hex')}`;
  const base = path.join(parent, `.${path.basename(target)}.${tag}`);
  const tmp = `${base}.tmp`;
  const fresh = `${base}.new`;
  const old = `${base}.old`;
  try {
    await mkdir(tmp);
  } catch (error) {
    throw ioError(`cannot write ${target}`, error);
  }
  try {
    await fill(tmp);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(`cannot write ${target}`, error);
  }
  await step('filled');
  try {
    await rename(tmp, fresh);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw ioError(`cannot write ${target}`, error);
  }
  await step('completed');
  let moved = false;
  try {
    await rename(target, old);
    moved = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      await rm(fresh, { recursive: true, force: true }).catch(() => undefined);
      throw ioError(`cannot replace ${target}`, error);
    }
  }
  await step('moved-old');
  try {
    await rename(fresh, target);
  } catch (error) {
    if (moved) await rename(old, target).catch(() => undefined);
    throw ioError(`cannot replace ${target}`, error);
  }
  await step('moved-new');
  if (moved) await rm(old, { recursive: true, force: true }).catch(() => undefined);
  await step('removed-old');
}

/** MD5 of a file, streamed. */
export function md5File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('md5');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', (error) => reject(new AdvcorrectError('ERR_IO', `cannot read ${file}: ${error.message}`, { cause: error })))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

export function md5Bytes(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}
