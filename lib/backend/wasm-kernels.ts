/**
 * Kernels that tfjs' WebAssembly backend lacks but training and the gradient engine need,
 * written in plain TypeScript over the backend's heap (no copies in or out):
 *   Conv2DBackpropFilter  (gradient of conv2d with respect to the filter)
 *   UnsortedSegmentSum    (gradient of gather)
 * The same functions serve any backend through a small read/allocate adapter.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdvcorrectError } from '../errors.js';

type TensorInfo = tf.TensorInfo;
type Typed = Float32Array | Int32Array | Uint8Array;

/** How a kernel reads its inputs and allocates its output on one backend. */
export interface KernelIO {
  read(backend: unknown, t: TensorInfo): Typed;
  /** Allocates an output and returns it with a writable view (valid until the next allocation). */
  allocate(backend: unknown, shape: number[], dtype: tf.DataType): { info: TensorInfo; data: Typed };
}

interface WasmLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Typed;
}

/** The wasm backend: tensors live in the WebAssembly heap; views are taken after every allocation. */
export const wasmIO: KernelIO = {
  read: (backend, t) => (backend as WasmLike).typedArrayFromHeap(t),
  allocate: (backend, shape, dtype) => {
    const info = (backend as WasmLike).makeOutput(shape, dtype);
    return { info, data: (backend as WasmLike).typedArrayFromHeap(info) };
  },
};

/** NHWC convolution geometry, from tfjs' own shape logic (so 'same'/'valid'/explicit pads agree). */
export function convGeometry(
  xShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  pad: unknown,
  dimRoundingMode: 'floor' | 'round' | 'ceil' | undefined,
  dataFormat: string | undefined,
  dilations: number | [number, number] = 1,
) {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new AdvcorrectError('ERR_UNSUPPORTED', `advcorrect conv kernels support NHWC only, got data format ${dataFormat}`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad as 'same',
    dimRoundingMode,
    false,
    'channelsLast',
  );
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    fH: info.filterHeight,
    fW: info.filterWidth,
    sH: info.strideHeight,
    sW: info.strideWidth,
    dH: info.dilationHeight,
    dW: info.dilationWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

export type ConvGeometry = ReturnType<typeof convGeometry>;

/** dW[fr,fc,ci,co] = Σ x[b, yr·s+fr−pad, yc·s+fc−pad, ci] · dy[b,yr,yc,co]  (dW zeroed first). */
export function conv2dBackpropFilterJs(x: Float32Array, dy: Float32Array, g: ConvGeometry, dW: Float32Array): void {
  dW.fill(0);
  const { batch, inH, inW, inC, outH, outW, outC, fH, fW, sH, sW, padTop, padLeft } = g;
  for (let b = 0; b < batch; b++) {
    for (let yr = 0; yr < outH; yr++) {
      const xr0 = yr * sH - padTop;
      for (let yc = 0; yc < outW; yc++) {
        const xc0 = yc * sW - padLeft;
        const dyOff = ((b * outH + yr) * outW + yc) * outC;
        for (let fr = 0; fr < fH; fr++) {
          const xr = xr0 + fr;
          if (xr < 0 || xr >= inH) continue;
          for (let fc = 0; fc < fW; fc++) {
            const xc = xc0 + fc;
            if (xc < 0 || xc >= inW) continue;
            const xOff = ((b * inH + xr) * inW + xc) * inC;
            const wOff = (fr * fW + fc) * inC * outC;
            for (let ci = 0; ci < inC; ci++) {
              const xv = x[xOff + ci];
              if (xv === 0) continue;
              const row = wOff + ci * outC;
              for (let co = 0; co < outC; co++) dW[row + co] += xv * dy[dyOff + co];
            }
          }
        }
      }
    }
  }
}

/** out[s, …] = Σ_{i: ids[i] = s} x[i, …]; ids outside [0, numSegments) are dropped (as in TensorFlow). */
export function unsortedSegmentSumJs(
  x: Typed,
  ids: Typed,
  numSegments: number,
  inner: number,
  out: Typed,
): void {
  out.fill(0);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let k = 0; k < inner; k++) out[dst + k] += x[src + k];
  }
}

/** Copies the box x[begin .. begin+size) of an N-d array (row-major) into out, in contiguous runs. */
export function sliceJs(x: Typed, shape: number[], begin: number[], size: number[], out: Typed): void {
  const rank = shape.length;
  if (out.length === 0) return;
  if (rank === 0) {
    out[0] = x[0];
    return;
  }
  // Trailing dims taken whole merge into one run.
  let k = rank - 1;
  while (k > 0 && begin[k] === 0 && size[k] === shape[k]) k--;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  const run = size[k] * strides[k];
  const outer = size.slice(0, k).reduce((a, b) => a * b, 1);
  const index = new Array<number>(k).fill(0);
  let dst = 0;
  for (let o = 0; o < outer; o++) {
    let src = begin[k] * strides[k];
    for (let d = 0; d < k; d++) src += (begin[d] + index[d]) * strides[d];
    out.set(x.subarray(src, src + run), dst);
    dst += run;
    for (let d = k - 1; d >= 0; d--) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
}

/** out = x repeated reps[d] times along each dim d (tf.tile), built from the innermost dim out. */
export function tileJs(x: Typed, shape: number[], reps: number[], out: Typed): void {
  const rank = shape.length;
  if (out.length === 0) return;
  if (rank === 0) {
    out[0] = x[0];
    return;
  }
  // After processing dims > d, each of the outer(d) blocks holds block(d) values; repeat them reps[d] times.
  let current: Typed = x;
  let block = 1;
  for (let d = rank - 1; d >= 0; d--) {
    const inner = block * shape[d];
    const outer = shape.slice(0, d).reduce((a, b) => a * b, 1);
    const grown = inner * reps[d];
    const next = d === 0 ? out : (new (x.constructor as { new (n: number): Typed })(outer * grown) as Typed);
    for (let o = 0; o < outer; o++) {
      const src = current.subarray(o * inner, (o + 1) * inner);
      for (let r = 0; r < reps[d]; r++) next.set(src, o * grown + r * inner);
    }
    current = next;
    block = grown;
  }
}

/** Slice and Tile over an I/O adapter: tfjs-wasm's own are element-by-element and slow on big tensors. */
export function dataMovementConfigs(backendName: string, io: KernelIO): tf.KernelConfig[] {
  const slice: tf.KernelConfig = {
    kernelName: tf.Slice,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x } = inputs as { x: TensorInfo };
      const { begin, size } = attrs as unknown as tf.SliceAttrs;
      const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
      tf.slice_util.assertParamsValid(x, b, s);
      const out = io.allocate(backend, s, x.dtype);
      sliceJs(io.read(backend, x), x.shape, b, s, out.data);
      return out.info;
    },
  };
  const tile: tf.KernelConfig = {
    kernelName: tf.Tile,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x } = inputs as { x: TensorInfo };
      const { reps } = attrs as unknown as tf.TileAttrs;
      if (reps.length !== x.shape.length) throw new RangeError(`Tile: reps has ${reps.length} entries for a rank-${x.shape.length} tensor`);
      const out = io.allocate(backend, x.shape.map((d, i) => d * reps[i]), x.dtype);
      tileJs(io.read(backend, x), x.shape, reps, out.data);
      return out.info;
    },
  };
  return [slice, tile];
}

/** Kernel configs built on an I/O adapter, for registration under any backend name. */
export function extraKernelConfigs(backendName: string, io: KernelIO): tf.KernelConfig[] {
  const conv2DBackpropFilter: tf.KernelConfig = {
    kernelName: tf.Conv2DBackpropFilter,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      const g = convGeometry(x.shape, filterShape, strides, pad, dimRoundingMode, dataFormat);
      const out = io.allocate(backend, [...filterShape], 'float32');
      conv2dBackpropFilterJs(io.read(backend, x) as Float32Array, io.read(backend, dy) as Float32Array, g, out.data as Float32Array);
      return out.info;
    },
  };
  const unsortedSegmentSum: tf.KernelConfig = {
    kernelName: tf.UnsortedSegmentSum,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
      const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
      const idCount = tf.util.sizeFromShape(segmentIds.shape);
      const innerShape = x.shape.slice(segmentIds.shape.length);
      const inner = tf.util.sizeFromShape(innerShape);
      if (tf.util.sizeFromShape(x.shape) !== idCount * inner) {
        throw new RangeError('UnsortedSegmentSum: segmentIds shape must be a prefix of x shape');
      }
      const out = io.allocate(backend, [numSegments, ...innerShape], x.dtype);
      unsortedSegmentSumJs(io.read(backend, x), io.read(backend, segmentIds), numSegments, inner, out.data);
      return out.info;
    },
  };
  return [conv2DBackpropFilter, unsortedSegmentSum];
}

const registered = new Set<string>();

/** Registers the missing kernels for a wasm-based backend (once per name; never replaces tfjs' own). */
export function registerWasmKernels(backendName: string): void {
  if (registered.has(backendName)) return;
  registered.add(backendName);
  for (const config of extraKernelConfigs(backendName, wasmIO)) {
    if (tf.getKernel(config.kernelName, backendName) == null) tf.registerKernel(config);
  }
}
