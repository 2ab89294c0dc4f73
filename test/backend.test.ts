import assert from 'node:assert/strict';
import {
  BACKEND_NAMES,
  type BackendName,
  activeBackend,
  initBackend,
  isBackendAvailable,
  tf,
} from '../lib/backend/index.js';
import { nativeKernels } from '../lib/backend/native-kernels.js';
import { type KernelIO, convGeometry, dataMovementConfigs, extraKernelConfigs } from '../lib/backend/wasm-kernels.js';
import { AdvcorrectError } from '../lib/errors.js';
import { maxAbs, maxAbsDiff } from './helpers/arrays.js';

/** A deterministic pseudo-random array in [-1, 1] (no dependence on any backend's RNG). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 0xffffffff) * 2 - 1;
  }
  return out;
}

/** Runs `compute` on a backend and returns its outputs as plain arrays. */
async function on(backend: BackendName, compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  await initBackend(backend);
  const outs = tf.tidy(compute);
  const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return data;
}

function assertClose(got: Float32Array[], want: Float32Array[], what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = 1e-4 * Math.max(1, maxAbs(want[i]));
    const diff = maxAbsDiff(got[i], want[i]);
    assert.ok(diff <= tol, `${what}, output ${i}: max |diff| ${diff} > ${tol}`);
  }
}

interface ConvCase {
  x: [number, number, number, number];
  f: [number, number, number, number];
  strides: number | [number, number];
  pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
  dilations?: number;
}

const convCases: ConvCase[] = [
  { x: [2, 28, 28, 1], f: [3, 3, 1, 8], strides: 2, pad: 'same' }, // CNNLight conv1
  { x: [3, 14, 14, 8], f: [3, 3, 8, 16], strides: 2, pad: 'same' }, // CNNLight conv2
  { x: [2, 9, 7, 3], f: [3, 3, 3, 5], strides: 1, pad: 'same' },
  { x: [2, 9, 7, 3], f: [2, 3, 3, 4], strides: [2, 1], pad: 'valid' },
  { x: [1, 8, 8, 4], f: [1, 1, 4, 6], strides: 1, pad: 'valid' }, // pointwise fast path
  { x: [2, 8, 8, 4], f: [1, 1, 4, 6], strides: 2, pad: 'valid' }, // ResNet downsample
  { x: [2, 10, 10, 2], f: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
  { x: [1, 11, 11, 2], f: [3, 3, 2, 2], strides: 1, pad: 'same', dilations: 2 },
];

/** Convolution output plus both gradients of Σ r·conv(x, w). */
function convOutputs(c: ConvCase): tf.Tensor[] {
  const x = tf.tensor4d(values(c.x.reduce((a, b) => a * b), 1), c.x);
  const w = tf.tensor4d(values(c.f.reduce((a, b) => a * b), 2), c.f);
  const y = tf.conv2d(x, w, c.strides, c.pad, 'NHWC', c.dilations ?? 1);
  const r = tf.tensor(values(y.size, 3), y.shape);
  const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.strides, c.pad, 'NHWC', c.dilations ?? 1), r));
  const grads = c.dilations && c.dilations > 1 ? [] : tf.grads(f)([x, w]);
  return [y, ...grads];
}

// Leave the default backend active for the test files that run after this one.
after(async function () {
  await initBackend();
});

describe('backend selection', function () {
  const savedEnv = process.env.ADVCORRECT_BACKEND;
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.ADVCORRECT_BACKEND;
    else process.env.ADVCORRECT_BACKEND = savedEnv;
  });

  it("'auto' picks an available backend and activeBackend() reports it", async function () {
    delete process.env.ADVCORRECT_BACKEND;
    const name = await initBackend('auto');
    assert.ok(BACKEND_NAMES.includes(name));
    assert.equal(activeBackend(), name);
    assert.ok(await isBackendAvailable(name));
    // Our own fastest is preferred when libtensorflow is absent.
    if (!(await isBackendAvailable('tensorflow')) && (await isBackendAvailable('native'))) assert.equal(name, 'native');
    const sum = tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3.5])).dataSync()[0]);
    assert.equal(sum, 6.5);
    assert.equal(await initBackend('auto'), name, 'idempotent');
  });

  it('rejects unknown names with a RangeError and non-strings with a TypeError', async function () {
    await assert.rejects(initBackend('gpu' as never), {
      name: 'RangeError',
      message: "unknown backend 'gpu' (expected one of auto, tensorflow, native, wasm, cpu)",
    });
    await assert.rejects(initBackend(3 as never), { name: 'TypeError', message: 'backend must be a string, got number' });
  });

  it("'tensorflow' without @tensorflow/tfjs-node fails with ERR_BACKEND and says how to install it", async function () {
    if (await isBackendAvailable('tensorflow')) {
      console.log('skipped: @tensorflow/tfjs-node is installed, so the tensorflow backend does not fail');
      this.skip();
    }
    const before = await initBackend('cpu');
    await assert.rejects(initBackend('tensorflow'), (error: unknown) => {
      assert.ok(error instanceof AdvcorrectError);
      assert.equal(error.code, 'ERR_BACKEND');
      assert.match(error.message, /npm install @tensorflow\/tfjs-node@4\.22\.0/);
      assert.match(error.message, /--backend native\|wasm\|cpu/);
      return true;
    });
    assert.equal(activeBackend(), before, 'a failed switch leaves the active backend alone');
  });

  it('respects ADVCORRECT_BACKEND and rejects a bad value there', async function () {
    process.env.ADVCORRECT_BACKEND = 'cpu';
    assert.equal(await initBackend(), 'cpu');
    assert.equal(tf.getBackend(), 'cpu');
    process.env.ADVCORRECT_BACKEND = 'wasm';
    assert.equal(await initBackend(), 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    process.env.ADVCORRECT_BACKEND = 'fast';
    await assert.rejects(initBackend(), { name: 'RangeError', message: /ADVCORRECT_BACKEND/ });
  });

  it('switches between wasm and native kernels on the same tfjs backend', async function () {
    if (!(await isBackendAvailable('native'))) assert.fail('the native addon is not built: run `npm run build:native` (it is built in CI, so a missing addon is a failure, not a skip)');
    assert.equal(await initBackend('native'), 'native');
    assert.equal(tf.getBackend(), 'wasm');
    assert.equal(await initBackend('wasm'), 'wasm');
    assert.equal(await initBackend('native'), 'native');
  });
});

describe('our kernels refuse what they cannot do', function () {
  /** An I/O adapter that must not be reached: the kernels below fail before reading or allocating. */
  const unreachable: KernelIO = {
    read: () => assert.fail('read reached'),
    allocate: () => assert.fail('allocate reached'),
  };
  const info = (shape: number[]): tf.TensorInfo => ({ dataId: {}, shape, dtype: 'float32' });
  const kernel = (configs: tf.KernelConfig[], name: string): tf.KernelFunc => {
    const config = configs.find((c) => c.kernelName === name);
    assert.ok(config, `no ${name} kernel`);
    return config.kernelFunc;
  };

  it('a channels-first convolution is ERR_UNSUPPORTED', function () {
    assert.throws(() => convGeometry([1, 3, 8, 8], [3, 3, 3, 4], 1, 'same', undefined, 'NCHW'), (error: unknown) => {
      assert.ok(error instanceof AdvcorrectError);
      assert.equal(error.code, 'ERR_UNSUPPORTED');
      assert.equal(error.message, 'advcorrect conv kernels support NHWC only, got data format NCHW');
      return true;
    });
    assert.equal(convGeometry([1, 8, 8, 3], [3, 3, 3, 4], 1, 'same', undefined, 'NHWC').outC, 4);
  });

  it('Tile with the wrong number of repetitions and UnsortedSegmentSum with mismatched ids are RangeErrors', function () {
    const tile = kernel(dataMovementConfigs('test', unreachable), tf.Tile);
    assert.throws(() => tile({ inputs: { x: info([2, 3]) }, backend: {} as tf.KernelBackend, attrs: { reps: [2] } }), {
      name: 'RangeError',
      message: 'Tile: reps has 1 entries for a rank-2 tensor',
    });
    const segmentSum = kernel(extraKernelConfigs('test', unreachable), tf.UnsortedSegmentSum);
    const segmentIds = { ...info([3]), dtype: 'int32' as const };
    assert.throws(
      () => segmentSum({ inputs: { x: info([4, 3]), segmentIds }, backend: {} as tf.KernelBackend, attrs: { numSegments: 2 } }),
      { name: 'RangeError', message: 'UnsortedSegmentSum: segmentIds shape must be a prefix of x shape' },
    );
  });
});

describe('registered kernels agree with the cpu backend', function () {
  for (const backend of ['wasm', 'native'] as const) {
    describe(backend, function () {
      before(async function () {
        if (!(await isBackendAvailable(backend))) assert.fail(`the ${backend} backend is not available: ${backend === 'native' ? 'run `npm run build:native`' : 'the tfjs-backend-wasm package is missing'}`);
      });

      for (const c of convCases) {
        const label = `conv2d x${c.x.join('×')} f${c.f.join('×')} stride ${String(c.strides)} pad ${JSON.stringify(c.pad)}${
          c.dilations ? ` dilation ${c.dilations}` : ''
        }: output and both gradients`;
        it(label, async function () {
          const want = await on('cpu', () => convOutputs(c));
          const got = await on(backend, () => convOutputs(c));
          assertClose(got, want, label);
        });
      }

      const matCases: Array<{ a: number[]; b: number[]; ta: boolean; tb: boolean; noGrad?: boolean }> = [
        { a: [64, 157], b: [157, 10], ta: false, tb: false },
        { a: [157, 64], b: [157, 10], ta: true, tb: false },
        { a: [64, 157], b: [10, 157], ta: false, tb: true },
        { a: [157, 64], b: [10, 157], ta: true, tb: true },
        { a: [3, 5, 7], b: [3, 7, 4], ta: false, tb: false },
        // Broadcast batches: outputs only (tfjs' own BatchMatMul gradient rejects these shapes).
        { a: [3, 5, 7], b: [1, 7, 4], ta: false, tb: false, noGrad: true },
        { a: [1, 7, 5], b: [3, 4, 7], ta: true, tb: true, noGrad: true },
        { a: [2, 2, 6, 3], b: [2, 2, 3, 5], ta: false, tb: false },
      ];
      for (const m of matCases) {
        const label = `matMul ${m.a.join('×')}${m.ta ? 'ᵀ' : ''} · ${m.b.join('×')}${m.tb ? 'ᵀ' : ''}${m.noGrad ? '' : ' and its gradients'}`;
        it(label, async function () {
          const compute = () => {
            const a = tf.tensor(values(m.a.reduce((p, q) => p * q), 4), m.a);
            const b = tf.tensor(values(m.b.reduce((p, q) => p * q), 5), m.b);
            const y = tf.matMul(a, b, m.ta, m.tb);
            if (m.noGrad) return [y];
            const r = tf.tensor(values(y.size, 6), y.shape);
            const g = tf.grads((aa: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(tf.matMul(aa, bb, m.ta, m.tb), r)))([a, b]);
            return [y, ...g];
          };
          assertClose(await on(backend, compute), await on('cpu', compute), label);
        });
      }

      it('fused dense (matMul + bias + relu) and fused conv2d (bias + relu)', async function () {
        const compute = () => {
          const x = tf.tensor2d(values(32 * 50, 7), [32, 50]);
          const w = tf.tensor2d(values(50 * 20, 8), [50, 20]);
          const bias = tf.tensor1d(values(20, 9));
          const dense = tf.fused.matMul({ a: x, b: w, bias, activation: 'relu' });
          const img = tf.tensor4d(values(2 * 9 * 9 * 3, 10), [2, 9, 9, 3]);
          const f = tf.tensor4d(values(3 * 3 * 3 * 4, 11), [3, 3, 3, 4]);
          const b2 = tf.tensor1d(values(4, 12));
          const conv = tf.fused.conv2d({ x: img, filter: f, strides: 2, pad: 'same', bias: b2, activation: 'relu' });
          const lin = tf.fused.conv2d({ x: img, filter: f, strides: 1, pad: 'valid', bias: b2 });
          return [dense, conv, lin];
        };
        assertClose(await on(backend, compute), await on('cpu', compute), 'fused ops');
      });

      it('slice, tile and the gradient of zero padding (Slice/Tile over whole runs)', async function () {
        const compute = () => {
          const x = tf.tensor4d(values(3 * 7 * 6 * 5, 15), [3, 7, 6, 5]);
          const ints = tf.tensor3d(Int32Array.from({ length: 24 }, (_, i) => i * 7 - 30), [2, 3, 4], 'int32');
          const r = tf.tensor4d(values(3 * 9 * 9 * 5, 16), [3, 9, 9, 5]);
          return [
            tf.slice(x, [1, 2, 1, 0], [2, 4, 5, 5]),
            tf.slice(x, [0, 0, 0, 2], [3, 7, 6, 2]),
            tf.slice(x, [2, 6, 5, 4], [1, 1, 1, 1]),
            tf.slice(x, [1, 0, 0, 0], [1, 7, 6, 5]),
            tf.cast(tf.slice(ints, [1, 1, 1], [1, 2, 3]), 'float32'),
            tf.tile(tf.tensor4d(values(4, 17), [1, 1, 1, 4]), [3, 2, 5, 1]),
            tf.tile(x, [1, 2, 1, 3]),
            tf.cast(tf.tile(ints, [2, 1, 2]), 'float32'),
            tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.pad(t as tf.Tensor4D, [[0, 0], [1, 1], [2, 1], [0, 0]]), r)))(x),
          ];
        };
        assertClose(await on(backend, compute), await on('cpu', compute), 'slice/tile');
      });

      it('gradient of gather (UnsortedSegmentSum)', async function () {
        const compute = () => {
          const table = tf.tensor2d(values(6 * 4, 13), [6, 4]);
          const idx = tf.tensor1d([5, 0, 5, 2, 2, 2], 'int32');
          return [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, idx), tf.tensor2d(values(24, 14), [6, 4]))))(table)];
        };
        assertClose(await on(backend, compute), await on('cpu', compute), 'gather gradient');
      });
    });
  }
});

describe('native kernel binding', function () {
  before(async function () {
    if (!(await isBackendAvailable('native'))) assert.fail('the native addon is not built: run `npm run build:native` (it is built in CI, so a missing addon is a failure, not a skip)');
  });

  it('checks array types and sizes', function () {
    const k = nativeKernels();
    const shape = Int32Array.from([1, 4, 4, 1, 4, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1]);
    assert.throws(() => k.conv2dForward(new Float32Array(15), new Float32Array(9), new Float32Array(16), shape), {
      name: 'RangeError',
      message: 'x has 15 elements, the shape needs 16',
    });
    assert.throws(
      () => k.conv2dForward(new Float64Array(16) as never, new Float32Array(9), new Float32Array(16), shape),
      { name: 'TypeError', message: 'x must be a Float32Array' },
    );
    assert.throws(() => k.conv2dForward(new Float32Array(16), new Float32Array(9), new Float32Array(16), new Int32Array(3)), {
      name: 'TypeError',
    });
    const bad = Int32Array.from(shape);
    bad[9] = 0;
    assert.throws(() => k.conv2dForward(new Float32Array(16), new Float32Array(9), new Float32Array(16), bad), {
      name: 'RangeError',
    });
  });

  it('3×3 "same" convolution of a delta image reproduces the flipped filter', function () {
    const k = nativeKernels();
    const x = new Float32Array(25);
    x[12] = 1; // centre of a 5×5 image
    const w = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const y = new Float32Array(25);
    k.conv2dForward(x, w, y, Int32Array.from([1, 5, 5, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1]));
    // y[r, c] = Σ w[i, j] x[r + i − 1, c + j − 1]: the delta at (2,2) puts w[i,j] at (3 − i, 3 − j).
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) assert.equal(y[(3 - i) * 5 + (3 - j)], w[i * 3 + j]);
    assert.equal(y[0], 0);
  });

  it('measures a GEMM rate', function () {
    const gflops = nativeKernels().measureGemmGflops(128, 3);
    assert.ok(Number.isFinite(gflops) && gflops > 0.1, `GEMM rate ${gflops}`);
  });
});
