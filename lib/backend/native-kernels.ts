/**
 * The 'native' backend: tfjs' WebAssembly backend (fast element-wise ops, tensors in the wasm
 * heap) with its convolution and matrix-product kernels replaced by the C++ addon's
 * (im2col + Eigen GEMM over both cores, native/kernels/conv.cpp). The C++ code reads and
 * writes the wasm heap in place through Float32Array views: no copies.
 *
 * Selecting 'native' swaps these kernel registrations in for backend 'wasm'; selecting
 * 'wasm' swaps tfjs' own back. Anything the native kernels do not cover (NCHW, non-float
 * dtypes, PReLU fusion, unbroadcastable batch shapes) falls through to the original kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { AdvcorrectError } from '../errors.js';
import { loadNative } from '../native.js';
import { type ConvGeometry, convGeometry, dataMovementConfigs, wasmIO } from './wasm-kernels.js';

type TensorInfo = tf.TensorInfo;

/** The addon's `kernels` object (native/binding/kernels_binding.cpp). */
export interface NativeKernels {
  conv2dForward(x: Float32Array, w: Float32Array, y: Float32Array, shape: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array): void;
  batchMatMul(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batchA: number,
    batchB: number,
    m: number,
    k: number,
    n: number,
    transA: boolean,
    transB: boolean,
  ): void;
  measureGemmGflops(n: number, reps: number): number;
  threadCount(): number;
  /**
   * Per-example weight gradients written into a row matrix (row b at rows[b·rowStride …], each
   * block at its offset in the flat weight vector; offset -1: the tensor is not in the row).
   * Optional: an addon built before these kernels lacks them (native/kernels/per_example.h).
   */
  denseExampleGradients?(
    x: Float32Array,
    dy: Float32Array,
    rows: Float32Array,
    batch: number,
    nIn: number,
    nOut: number,
    rowStride: number,
    kernelOffset: number,
    biasOffset: number,
  ): void;
  conv2dExampleGradients?(
    x: Float32Array,
    dy: Float32Array,
    rows: Float32Array,
    shape: Int32Array,
    rowStride: number,
    kernelOffset: number,
    biasOffset: number,
  ): void;
  batchNormExampleGradients?(
    xhat: Float32Array,
    dy: Float32Array,
    rows: Float32Array,
    batch: number,
    positions: number,
    channels: number,
    rowStride: number,
    gammaOffset: number,
    betaOffset: number,
  ): void;
  setThreadCount(n: number): void;
}

let cachedKernels: NativeKernels | undefined;

/**
 * OpenMP threads that spin while they wait (libgomp's default) make the kernels 10-100x
 * slower when the two cores are shared with other processes; sleeping waiters cost a few
 * microseconds per call instead. libgomp reads this when the addon is first loaded, so it
 * only helps if nothing loaded the addon before; the user's own setting wins.
 */
export function ensurePassiveOpenMp(): void {
  if (process.env.OMP_WAIT_POLICY === undefined) process.env.OMP_WAIT_POLICY = 'PASSIVE';
}

/** The native kernels; throws ERR_BACKEND when the addon is missing or was built without them. */
export function nativeKernels(): NativeKernels {
  if (cachedKernels) return cachedKernels;
  let addon;
  try {
    ensurePassiveOpenMp();
    addon = loadNative();
  } catch (error) {
    throw new AdvcorrectError(
      'ERR_BACKEND',
      `The 'native' backend needs the advcorrect addon: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (typeof addon.kernels?.conv2dForward !== 'function') {
    throw new AdvcorrectError(
      'ERR_BACKEND',
      "The advcorrect addon was built without its tensor kernels; rebuild it with `npm run build:native`",
    );
  }
  cachedKernels = addon.kernels as NativeKernels;
  return cachedKernels;
}

/** The Int32Array of 15 shape fields the native conv kernels take. */
export function convShapeArray(g: ConvGeometry): Int32Array {
  return Int32Array.from([
    g.batch, g.inH, g.inW, g.inC, g.outH, g.outW, g.outC, g.fH, g.fW, g.sH, g.sW, g.dH, g.dW, g.padTop, g.padLeft,
  ]);
}

function isNhwc(dataFormat: unknown): boolean {
  return dataFormat === undefined || dataFormat === 'NHWC' || dataFormat === 'channelsLast';
}

const f32 = (backend: unknown, t: TensorInfo) => wasmIO.read(backend, t) as Float32Array;

/** In-place bias add and activation on an [rows, channels] block; false when unsupported. */
function biasActivation(
  out: Float32Array,
  channels: number,
  bias: Float32Array | undefined,
  activation: string | undefined,
  leakyreluAlpha: number | undefined,
): boolean {
  const act = activation ?? 'linear';
  if (!['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu'].includes(act)) return false;
  if (bias && bias.length !== channels && bias.length !== 1) return false;
  if (bias) {
    if (bias.length === 1) {
      const b0 = bias[0];
      for (let i = 0; i < out.length; i++) out[i] += b0;
    } else {
      for (let i = 0; i < out.length; i += channels) for (let c = 0; c < channels; c++) out[i + c] += bias[c];
    }
  }
  switch (act) {
    case 'relu':
      for (let i = 0; i < out.length; i++) if (out[i] < 0) out[i] = 0;
      break;
    case 'relu6':
      for (let i = 0; i < out.length; i++) out[i] = Math.min(6, Math.max(0, out[i]));
      break;
    case 'leakyrelu': {
      const alpha = leakyreluAlpha ?? 0.2;
      for (let i = 0; i < out.length; i++) if (out[i] < 0) out[i] *= alpha;
      break;
    }
    case 'sigmoid':
      for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-out[i]));
      break;
    case 'elu':
      for (let i = 0; i < out.length; i++) if (out[i] < 0) out[i] = Math.exp(out[i]) - 1;
      break;
    default:
      break;
  }
  return true;
}

/** Batch geometry of a BatchMatMul, or undefined when the batch shapes do not broadcast simply. */
function matMulGeometry(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean) {
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const k2 = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== k2) return undefined;
  const batchShapeA = a.shape.slice(0, -2);
  const batchShapeB = b.shape.slice(0, -2);
  const batchA = tf.util.sizeFromShape(batchShapeA);
  const batchB = tf.util.sizeFromShape(batchShapeB);
  let batchShape: number[];
  if (batchA === batchB && tf.util.arraysEqual(batchShapeA, batchShapeB)) batchShape = batchShapeA;
  else if (batchA === 1) batchShape = batchShapeB.length >= batchShapeA.length ? batchShapeB : batchShapeA.map(() => 1);
  else if (batchB === 1) batchShape = batchShapeA.length >= batchShapeB.length ? batchShapeA : batchShapeB.map(() => 1);
  else return undefined;
  if (batchA !== 1 && batchB !== 1 && batchA !== batchB) return undefined;
  return { batchA, batchB, m, k, n, outShape: [...batchShape, m, n] };
}

/** The native kernel configs for backend 'wasm'; `original` gives tfjs' own, for fallbacks. */
function nativeConfigs(k: NativeKernels, original: (name: string) => tf.KernelConfig): tf.KernelConfig[] {
  const backendName = 'wasm';
  const fallback = (name: string, args: Parameters<tf.KernelFunc>[0]) =>
    original(name).kernelFunc(args) as TensorInfo;

  const conv2d: tf.KernelConfig = {
    kernelName: tf.Conv2D,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
      if (!isNhwc(dataFormat) || x.dtype !== 'float32') return fallback(tf.Conv2D, args);
      const g = convGeometry(x.shape, filter.shape, strides, pad, dimRoundingMode, dataFormat, dilations);
      const out = wasmIO.allocate(backend, [g.batch, g.outH, g.outW, g.outC], 'float32');
      k.conv2dForward(f32(backend, x), f32(backend, filter), out.data as Float32Array, convShapeArray(g));
      return out.info;
    },
  };

  const fusedConv2d: tf.KernelConfig = {
    kernelName: tf.FusedConv2D,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { x, filter, bias, preluActivationWeights } = inputs as {
        x: TensorInfo;
        filter: TensorInfo;
        bias?: TensorInfo;
        preluActivationWeights?: TensorInfo;
      };
      const { strides, pad, dataFormat, dilations, dimRoundingMode, activation, leakyreluAlpha } =
        attrs as unknown as tf.FusedConv2DAttrs;
      const supported =
        isNhwc(dataFormat) &&
        x.dtype === 'float32' &&
        preluActivationWeights == null &&
        activation !== 'prelu' &&
        (bias == null || tf.util.sizeFromShape(bias.shape) === filter.shape[3] || tf.util.sizeFromShape(bias.shape) === 1);
      if (!supported) return fallback(tf.FusedConv2D, args);
      const g = convGeometry(x.shape, filter.shape, strides, pad, dimRoundingMode, dataFormat, dilations);
      const out = wasmIO.allocate(backend, [g.batch, g.outH, g.outW, g.outC], 'float32');
      const y = out.data as Float32Array;
      k.conv2dForward(f32(backend, x), f32(backend, filter), y, convShapeArray(g));
      if (!biasActivation(y, g.outC, bias ? f32(backend, bias) : undefined, activation, leakyreluAlpha)) {
        (backend as tf.KernelBackend).disposeData(out.info.dataId);
        return fallback(tf.FusedConv2D, args);
      }
      return out.info;
    },
  };

  const conv2dBackpropInput: tf.KernelConfig = {
    kernelName: tf.Conv2DBackpropInput,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
      if (!isNhwc(dataFormat) || dy.dtype !== 'float32') return fallback(tf.Conv2DBackpropInput, args);
      const g = convGeometry([...inputShape], filter.shape, strides, pad, dimRoundingMode, dataFormat);
      const out = wasmIO.allocate(backend, [...inputShape], 'float32');
      k.conv2dBackpropInput(f32(backend, dy), f32(backend, filter), out.data as Float32Array, convShapeArray(g));
      return out.info;
    },
  };

  const conv2dBackpropFilter: tf.KernelConfig = {
    kernelName: tf.Conv2DBackpropFilter,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
      const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
      if (!isNhwc(dataFormat) || x.dtype !== 'float32') return fallback(tf.Conv2DBackpropFilter, args);
      const g = convGeometry(x.shape, filterShape, strides, pad, dimRoundingMode, dataFormat);
      const out = wasmIO.allocate(backend, [...filterShape], 'float32');
      k.conv2dBackpropFilter(f32(backend, x), f32(backend, dy), out.data as Float32Array, convShapeArray(g));
      return out.info;
    },
  };

  const batchMatMul: tf.KernelConfig = {
    kernelName: tf.BatchMatMul,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
      const geo = matMulGeometry(a, b, transposeA, transposeB);
      if (!geo) return fallback(tf.BatchMatMul, args);
      const out = wasmIO.allocate(backend, geo.outShape, 'float32');
      k.batchMatMul(
        f32(backend, a), f32(backend, b), out.data as Float32Array,
        geo.batchA, geo.batchB, geo.m, geo.k, geo.n, transposeA, transposeB,
      );
      return out.info;
    },
  };

  const fusedMatMul: tf.KernelConfig = {
    kernelName: tf._FusedMatMul,
    backendName,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args;
      const { a, b, bias, preluActivationWeights } = inputs as {
        a: TensorInfo;
        b: TensorInfo;
        bias?: TensorInfo;
        preluActivationWeights?: TensorInfo;
      };
      const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as unknown as tf._FusedMatMulAttrs;
      const geo = matMulGeometry(a, b, transposeA, transposeB);
      if (!geo || preluActivationWeights != null || activation === 'prelu' || (bias && bias.shape.length > 1)) {
        return fallback(tf._FusedMatMul, args);
      }
      const out = wasmIO.allocate(backend, geo.outShape, 'float32');
      const c = out.data as Float32Array;
      k.batchMatMul(f32(backend, a), f32(backend, b), c, geo.batchA, geo.batchB, geo.m, geo.k, geo.n, transposeA, transposeB);
      if (!biasActivation(c, geo.n, bias ? f32(backend, bias) : undefined, activation, leakyreluAlpha)) {
        (backend as tf.KernelBackend).disposeData(out.info.dataId);
        return fallback(tf._FusedMatMul, args);
      }
      return out.info;
    },
  };

  // Slice (the gradient of padding) and Tile (in BatchNorm's gradient) copy whole runs instead of
  // single elements: 10-100x faster than tfjs-wasm's on the ResNet8 training shapes.
  const movement = dataMovementConfigs(backendName, wasmIO).map((config) => ({
    ...config,
    kernelFunc: (args: Parameters<tf.KernelFunc>[0]) => {
      const x = (args.inputs as { x: TensorInfo }).x;
      return x.dtype === 'string' ? fallback(config.kernelName, args) : (config.kernelFunc(args) as TensorInfo);
    },
  }));
  return [conv2d, fusedConv2d, conv2dBackpropInput, conv2dBackpropFilter, batchMatMul, fusedMatMul, ...movement];
}

const originals = new Map<string, tf.KernelConfig>();
let natives: tf.KernelConfig[] | undefined;
let nativeInstalled = false;

/** Checks the addon and builds the native kernel configs (once); throws ERR_BACKEND if unavailable. */
export async function registerNativeBackend(): Promise<void> {
  if (natives) return;
  const k = nativeKernels();
  const configs = nativeConfigs(k, (name) => {
    const config = originals.get(name);
    if (!config) throw new AdvcorrectError('ERR_BACKEND', `The wasm backend's own ${name} kernel was not recorded before the native one replaced it`);
    return config;
  });
  for (const config of configs) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (!current) throw new AdvcorrectError('ERR_BACKEND', `The wasm backend has no ${config.kernelName} kernel to replace`);
    originals.set(config.kernelName, current);
  }
  natives = configs;
}

/** Puts the native kernels in place of the wasm ones (true) or restores tfjs' (false). */
export function useNativeKernels(on: boolean): void {
  if (on === nativeInstalled) return;
  if (on && !natives) throw new AdvcorrectError('ERR_BACKEND', "The 'native' backend was not prepared");
  const configs = on ? natives! : [...originals.values()];
  for (const config of configs) {
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  nativeInstalled = on;
}

/** Whether the native kernels are currently registered for backend 'wasm'. */
export function nativeKernelsInstalled(): boolean {
  return nativeInstalled;
}
