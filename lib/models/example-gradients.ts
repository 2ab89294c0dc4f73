/**
 * Per-example weight gradients of one step, from the batch's kept activations and the backward
 * pass's gradient at the step's pre-activation: Dense a ⊗ δ, Conv2D Σ_positions patch ⊗ δ,
 * biases Σ δ, BatchNormalization Σ δ·x̂ and Σ δ; dense into a row or straight to sparse
 * (index, value) pairs. Where each step's tensors sit in the flat vector comes from the
 * parameter view (viewSteps). The addon's kernels (Dense outer product, Conv2D filter gradient of
 * a batch of one) replace the loops when the addon loads and the caller allows them.
 */
import type { ModelGraph, Conv2DSpec, GraphStep } from './graph.js';
import { AdvcorrectError } from '../errors.js';
import type { ParameterView } from './parameters.js';
import { loadNative } from '../native.js';

/** Zero padding (top, left) the conv applies to its input, as tfjs computes it for 'same'. */
export function padOffsets(inH: number, inW: number, outH: number, outW: number, spec: Conv2DSpec): [number, number] {
  if (spec.padding === 'valid') return [0, 0];
  if (typeof spec.padding === 'object') return [spec.padding.top, spec.padding.left];
  const effH = (spec.kernelH - 1) * spec.dilation[0] + 1;
  const effW = (spec.kernelW - 1) * spec.dilation[1] + 1;
  const padH = Math.max(0, (outH - 1) * spec.strides[0] + effH - inH);
  const padW = Math.max(0, (outW - 1) * spec.strides[1] + effW - inW);
  return [Math.floor(padH / 2), Math.floor(padW / 2)];
}

/** A parametric step of the view, with where its tensors go in the flat vector. */
export interface ViewStep {
  step: GraphStep;
  /** Offsets in the flat vector, -1 when the tensor is not in the view / absent. */
  kernel: number;
  bias: number;
  gamma: number;
  beta: number;
  /** The step's [offset, size] ranges in the flat vector, ascending. */
  regions: Array<[number, number]>;
}

export function viewSteps(graph: ModelGraph, view: ParameterView): ViewStep[] {
  const result: ViewStep[] = [];
  const covered = new Set<string>();
  for (const step of graph.steps) {
    const entries = view.entries.filter((e) => e.layer === step.layer);
    if (entries.length === 0) continue;
    if (step.kind !== 'dense' && step.kind !== 'conv2d' && step.kind !== 'bn') {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${step.layer}' (${step.className}) has trainable parameters the gradient engine does not know`);
    }
    const offset = (name: string): number => entries.find((e) => e.name === name)?.offset ?? -1;
    for (const e of entries) {
      const allowed = step.kind === 'bn' ? ['gamma', 'beta'] : ['kernel', 'bias'];
      if (!allowed.includes(e.name)) {
        throw new AdvcorrectError('ERR_UNSUPPORTED', `layer '${step.layer}': trainable tensor '${e.name}' is not supported`);
      }
      covered.add(`${e.layer}/${e.name}`);
    }
    const regions = entries.map((e) => [e.offset, e.size] as [number, number]).sort((x, y) => x[0] - y[0]);
    result.push({ step, kernel: offset('kernel'), bias: offset('bias'), gamma: offset('gamma'), beta: offset('beta'), regions });
  }
  for (const e of view.entries) {
    if (!covered.has(`${e.layer}/${e.name}`)) {
      throw new AdvcorrectError('ERR_UNSUPPORTED', `parameter ${e.layer}/${e.name} is not reachable by the gradient engine`);
    }
  }
  // Ascending offsets, so that sparse rows come out sorted step by step.
  return result.sort((x, y) => x.regions[0][0] - y.regions[0][0]);
}

/** Per-batch data a parametric step needs to form per-example weight gradients. */
export interface StepInputs {
  /** Dense/Conv2D: the layer input; BN: the normalised input x̂. */
  a: Float32Array;
  inShape: number[];
  outShape: number[];
  pad: [number, number];
  /** The addon's kernels when they are used, with the conv geometry of one example. */
  native?: NativeKernels;
  convShape?: Int32Array;
}

/** The part of the addon's `kernels` object used here (see native/binding/kernels_binding.cpp). */
export interface NativeKernels {
  threadCount(): number;
  setThreadCount(n: number): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array): void;
  batchMatMul(a: Float32Array, b: Float32Array, c: Float32Array, batchA: number, batchB: number, m: number, k: number, n: number, transA: boolean, transB: boolean): void;
}

let nativeKernelsCache: NativeKernels | null | undefined;

/** The addon's tensor kernels, or null when the addon is not built/loadable. */
export function nativeKernels(): NativeKernels | null {
  if (nativeKernelsCache !== undefined) return nativeKernelsCache;
  try {
    const k = loadNative().kernels as NativeKernels | undefined;
    nativeKernelsCache = k && typeof k.conv2dBackpropFilter === 'function' && typeof k.batchMatMul === 'function' ? k : null;
  } catch {
    nativeKernelsCache = null;
  }
  return nativeKernelsCache;
}

/** Zeroes the regions of `row` that belong to this step's tensors. */
function clearStep(vs: ViewStep, row: Float32Array, inputs: StepInputs): void {
  const { inShape, outShape } = inputs;
  const out = outShape[outShape.length - 1];
  if (vs.step.kind === 'dense') {
    if (vs.kernel >= 0) row.fill(0, vs.kernel, vs.kernel + inShape[1] * out);
  } else if (vs.step.kind === 'conv2d') {
    const spec = vs.step.conv as Conv2DSpec;
    if (vs.kernel >= 0) row.fill(0, vs.kernel, vs.kernel + spec.kernelH * spec.kernelW * inShape[3] * out);
  } else if (vs.gamma >= 0) row.fill(0, vs.gamma, vs.gamma + out);
  if (vs.bias >= 0) row.fill(0, vs.bias, vs.bias + out);
  if (vs.beta >= 0) row.fill(0, vs.beta, vs.beta + out);
}

/**
 * Writes the per-example gradient of the seeded scalar for example `b` into `row`, overwriting
 * every position of this step's tensors (the row may start uninitialised). `d` is the gradient
 * w.r.t. the step's pre-activation, or undefined when the seed does not reach the step.
 */
export function writeExampleGradient(vs: ViewStep, inputs: StepInputs, d: Float32Array | undefined, b: number, row: Float32Array): void {
  const { step } = vs;
  const { a, inShape, outShape } = inputs;
  if (!d || step.kind !== 'dense') clearStep(vs, row, inputs);
  if (!d) return;
  if (step.kind === 'dense') {
    const nIn = inShape[1];
    const nOut = outShape[1];
    const aOff = b * nIn;
    const dOff = b * nOut;
    if (vs.kernel >= 0 && inputs.native) {
      // Outer product a_b ⊗ d_b as an [nIn×1]·[1×nOut] GEMM written straight into the row.
      inputs.native.batchMatMul(
        a.subarray(aOff, aOff + nIn), d.subarray(dOff, dOff + nOut), row.subarray(vs.kernel, vs.kernel + nIn * nOut),
        1, 1, nIn, 1, nOut, false, false,
      );
    } else if (vs.kernel >= 0) {
      for (let p = 0; p < nIn; p++) {
        const ap = a[aOff + p];
        const base = vs.kernel + p * nOut;
        if (ap === 0) {
          row.fill(0, base, base + nOut);
          continue;
        }
        for (let q = 0; q < nOut; q++) row[base + q] = ap * d[dOff + q];
      }
    }
    if (vs.bias >= 0) for (let q = 0; q < nOut; q++) row[vs.bias + q] = d[dOff + q];
    return;
  }
  if (step.kind === 'conv2d') {
    const spec = step.conv as Conv2DSpec;
    const [, H, W, cin] = inShape;
    const [, Ho, Wo, cout] = outShape;
    const [padT, padL] = inputs.pad;
    const hasBias = vs.bias >= 0;
    const [sH, sW] = spec.strides;
    const [dH, dW] = spec.dilation;
    const kH = spec.kernelH;
    const kW = spec.kernelW;
    const aBase = b * H * W * cin;
    const dBase = b * Ho * Wo * cout;
    let hasKernel = vs.kernel >= 0;
    if (hasKernel && inputs.native) {
      // Σ_positions patch ⊗ δ is the filter gradient of a batch of one: im2col + GEMM natively.
      const size = kH * kW * cin * cout;
      inputs.native.conv2dBackpropFilter(
        a.subarray(aBase, aBase + H * W * cin), d.subarray(dBase, dBase + Ho * Wo * cout),
        row.subarray(vs.kernel, vs.kernel + size), inputs.convShape as Int32Array,
      );
      hasKernel = false;
      if (!hasBias) return;
    }
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        const dp = dBase + (oh * Wo + ow) * cout;
        let any = false;
        for (let c = 0; c < cout; c++) {
          if (d[dp + c] !== 0) {
            any = true;
            break;
          }
        }
        if (!any) continue;
        if (hasBias) for (let c = 0; c < cout; c++) row[vs.bias + c] += d[dp + c];
        if (!hasKernel) continue;
        for (let kh = 0; kh < kH; kh++) {
          const ih = oh * sH - padT + kh * dH;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < kW; kw++) {
            const iw = ow * sW - padL + kw * dW;
            if (iw < 0 || iw >= W) continue;
            const ap = aBase + (ih * W + iw) * cin;
            const kp = vs.kernel + (kh * kW + kw) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const x = a[ap + ci];
              if (x === 0) continue;
              const base = kp + ci * cout;
              for (let c = 0; c < cout; c++) row[base + c] += x * d[dp + c];
            }
          }
        }
      }
    }
    return;
  }
  // BatchNormalization: γ' = Σ_positions d·x̂, β' = Σ_positions d, per channel.
  const channels = outShape[outShape.length - 1];
  const positions = outShape.slice(1, -1).reduce((x, y) => x * y, 1);
  const base = b * positions * channels;
  for (let p = 0; p < positions; p++) {
    const off = base + p * channels;
    for (let c = 0; c < channels; c++) {
      const dv = d[off + c];
      if (dv === 0) continue;
      if (vs.gamma >= 0) row[vs.gamma + c] += dv * a[off + c];
      if (vs.beta >= 0) row[vs.beta + c] += dv;
    }
  }
}

/**
 * A Float32Array whose contents are not zeroed (Buffer.allocUnsafe memory): the caller writes
 * every element. Saves the zero-fill of a row of view.size floats that is overwritten anyway.
 */
export function uninitialisedFloat32(length: number): Float32Array {
  const bytes = Buffer.allocUnsafeSlow(length * 4);
  return new Float32Array(bytes.buffer, bytes.byteOffset, length);
}

/**
 * Appends the nonzero entries of row[from, to) to index/value from position k (arrays at least
 * view.size long) and returns the new count. Branch-free: every entry is written at position k and
 * k advances only past nonzeros (about twice as fast as an if on rows of 20 % density).
 */
export function compressRange(row: Float32Array, from: number, to: number, index: Int32Array, value: Float32Array, k: number): number {
  for (let i = from; i < to; i++) {
    const v = row[i];
    index[k] = i;
    value[k] = v;
    k += +(v !== 0);
  }
  return k;
}

/**
 * Sparse per-example gradient of a Dense step: kernel entries a_p·d_q for the nonzero a_p and d_q
 * (p-major, so indices ascend), then the bias entries d_q. Products that underflow to 0 are dropped.
 */
export function appendDenseSparse(
  vs: ViewStep,
  inputs: StepInputs,
  d: Float32Array,
  b: number,
  index: Int32Array,
  value: Float32Array,
  k: number,
  nonzero: Int32Array,
): number {
  const nIn = inputs.inShape[1];
  const nOut = inputs.outShape[1];
  const a = inputs.a;
  const aOff = b * nIn;
  const dOff = b * nOut;
  let count = 0;
  for (let q = 0; q < nOut; q++) if (d[dOff + q] !== 0) nonzero[count++] = q;
  if (vs.kernel >= 0 && count > 0) {
    for (let p = 0; p < nIn; p++) {
      const ap = a[aOff + p];
      if (ap === 0) continue;
      const base = vs.kernel + p * nOut;
      for (let t = 0; t < count; t++) {
        const q = nonzero[t];
        const v = ap * d[dOff + q];
        index[k] = base + q;
        value[k] = v;
        k += +(v !== 0);
      }
    }
  }
  if (vs.bias >= 0) {
    for (let t = 0; t < count; t++) {
      const q = nonzero[t];
      index[k] = vs.bias + q;
      value[k++] = d[dOff + q];
    }
  }
  return k;
}
