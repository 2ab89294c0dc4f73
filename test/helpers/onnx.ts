/** Shared by the ONNX tests: fixtures folder, onnxruntime-node runs, comparisons. */
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ImageDataset } from '../../lib/data/datasets.js';
import { packageRoot } from '../../lib/native.js';

export const fixtures = path.join(packageRoot, 'test', 'fixtures', 'onnx');

/** NCHW copy of NHWC images, times `scale`. */
export function toNchw(images: Float32Array, n: number, h: number, w: number, c: number, scale = 1): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + x] = images[((b * h + y) * w + x) * c + k] * scale;
      }
    }
  }
  return out;
}

/** onnxruntime's output for images in [0, 1] (NHWC), as the ONNX model takes them. */
export async function runOrt(file: string | Uint8Array, data: ImageDataset, scale = 1): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file as string);
  try {
    const input = new ort.Tensor('float32', toNchw(data.images, data.count, data.height, data.width, data.channels, scale), [data.count, data.channels, data.height, data.width]);
    const result = await session.run({ [session.inputNames[0]]: input });
    return Float32Array.from(result[session.outputNames[0]].data as Float32Array);
  } finally {
    await session.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

