/**
 * Tensor backend selection. Every module that runs TensorFlow.js work calls
 * `await initBackend()` first (cheap after the first call).
 *
 *   tensorflow  @tensorflow/tfjs-node (libtensorflow), used when it is installed
 *   native      tfjs' WebAssembly backend with our C++ (Eigen, OpenMP) kernels for
 *               convolutions and matrix products swapped in (tfjs backend name stays 'wasm')
 *   wasm        tfjs' WebAssembly backend (SIMD) plus the kernels it lacks for training
 *   cpu         tfjs' pure-JavaScript backend (slow; always available)
 *   auto        tensorflow if importable, else native if the addon loads, else wasm, else cpu
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import './prod.js';
// tfjs-layers' bundle registers the gradient functions of every op (tfjs-core's does not).
import '@tensorflow/tfjs-layers';
import { AdvcorrectError } from '../errors.js';
import { ensurePassiveOpenMp } from './native-kernels.js';

// Before anything loads the addon (see ensurePassiveOpenMp).
ensurePassiveOpenMp();

export type BackendName = 'tensorflow' | 'native' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow', 'native', 'wasm', 'cpu'];
const REQUESTS: readonly BackendRequest[] = ['auto', ...BACKEND_NAMES];

/** The tfjs backend name each of ours is registered under. */
export const TFJS_BACKEND_NAME: Record<BackendName, string> = {
  tensorflow: 'tensorflow',
  native: 'wasm',
  wasm: 'wasm',
  cpu: 'cpu',
};

let active: BackendName | undefined;
let pending: Promise<BackendName> | undefined;
let pendingRequest: BackendRequest | undefined;
const resolvedAuto: { value?: BackendName } = {};

/** Throws a RangeError unless `name` is a backend request we know. */
export function checkBackendRequest(name: unknown): asserts name is BackendRequest {
  if (typeof name !== 'string') throw new TypeError(`backend must be a string, got ${typeof name}`);
  if (!(REQUESTS as readonly string[]).includes(name)) {
    throw new RangeError(`unknown backend '${name}' (expected one of ${REQUESTS.join(', ')})`);
  }
}

/** The backend chosen when none is passed: $ADVCORRECT_BACKEND, else 'auto'. */
export function defaultBackendRequest(): BackendRequest {
  const fromEnv = process.env.ADVCORRECT_BACKEND?.trim();
  if (!fromEnv) return 'auto';
  if (!(REQUESTS as readonly string[]).includes(fromEnv)) {
    throw new RangeError(
      `unknown backend '${fromEnv}' in environment variable ADVCORRECT_BACKEND (expected one of ${REQUESTS.join(', ')})`,
    );
  }
  return fromEnv as BackendRequest;
}

/**
 * Makes `requested` (default: $ADVCORRECT_BACKEND or 'auto') the active tfjs backend and
 * returns its name. Idempotent: calling it again with the same request is free; a different
 * request switches backends (tensors made on the old one stay readable but are not moved).
 */
export async function initBackend(requested?: BackendRequest): Promise<BackendName> {
  const request = requested ?? defaultBackendRequest();
  checkBackendRequest(request);
  if (active && (request === active || (request === 'auto' && resolvedAuto.value === active))) {
    if (tf.getBackend() === TFJS_BACKEND_NAME[active]) return active;
  }
  if (pending && pendingRequest === request) return pending;
  const previous = pending ?? Promise.resolve(undefined);
  pendingRequest = request;
  pending = previous
    .catch(() => undefined)
    .then(() => activate(request))
    .finally(() => {
      pending = undefined;
      pendingRequest = undefined;
    });
  return pending;
}

/** The backend made active by {@link initBackend}; throws ERR_BACKEND before the first call. */
export function activeBackend(): BackendName {
  if (!active) {
    throw new AdvcorrectError('ERR_BACKEND', 'No tensor backend is initialised yet: call `await initBackend()` first');
  }
  return active;
}

/** Whether a backend can be used here, without activating it (may load the addon or tfjs-node). */
export async function isBackendAvailable(name: BackendName): Promise<boolean> {
  checkBackendRequest(name);
  try {
    await prepare(name);
    return true;
  } catch {
    return false;
  }
}

/** The backends usable on this machine, fastest first. */
export async function availableBackends(): Promise<BackendName[]> {
  const out: BackendName[] = [];
  for (const name of BACKEND_NAMES) if (await isBackendAvailable(name)) out.push(name);
  return out;
}

async function activate(request: BackendRequest): Promise<BackendName> {
  tf.enableProdMode();
  let chosen: BackendName;
  if (request === 'auto') {
    chosen = await resolveAuto();
  } else {
    await prepare(request);
    chosen = request;
  }
  if (chosen === 'native' || chosen === 'wasm') {
    const { useNativeKernels } = await import('./native-kernels.js');
    useNativeKernels(chosen === 'native');
  }
  const ok = await tf.setBackend(TFJS_BACKEND_NAME[chosen]);
  if (!ok) {
    throw new AdvcorrectError('ERR_BACKEND', `The tensor backend '${chosen}' failed to initialise`);
  }
  active = chosen;
  return chosen;
}

async function resolveAuto(): Promise<BackendName> {
  if (resolvedAuto.value) return resolvedAuto.value;
  // Order decided by measurement (docs/backends.md): tensorflow > native > wasm > cpu.
  for (const name of BACKEND_NAMES) {
    try {
      await prepare(name);
      resolvedAuto.value = name;
      return name;
    } catch {
      // try the next one
    }
  }
  throw new AdvcorrectError('ERR_BACKEND', 'No tensor backend could be initialised');
}

const prepared = new Map<BackendName, Promise<void>>();

/** Registers (once) everything `name` needs; throws ERR_BACKEND when it cannot be had. */
function prepare(name: BackendName): Promise<void> {
  let promise = prepared.get(name);
  if (!promise) {
    promise = prepareOnce(name);
    prepared.set(name, promise);
    // A failure stays cached: the answer will not change within this process.
  }
  return promise;
}

async function prepareOnce(name: BackendName): Promise<void> {
  switch (name) {
    case 'cpu':
      return;
    case 'tensorflow': {
      try {
        await import('@tensorflow/tfjs-node' as string);
      } catch (error) {
        throw new AdvcorrectError(
          'ERR_BACKEND',
          "The 'tensorflow' backend needs @tensorflow/tfjs-node, which is not installed or failed to load " +
            `(${(error as Error).message.split('\n')[0]}).\n` +
            'Install it with `npm install @tensorflow/tfjs-node@4.22.0` (its install downloads libtensorflow, so it needs ' +
            "network access), or choose another backend: --backend native|wasm|cpu.",
          { cause: error },
        );
      }
      if (tf.findBackendFactory('tensorflow') == null) {
        throw new AdvcorrectError(
          'ERR_BACKEND',
          "@tensorflow/tfjs-node loaded but registered no 'tensorflow' backend with this copy of @tensorflow/tfjs-core " +
            '(are several tfjs-core versions installed? all @tensorflow/* packages must be 4.22.0)',
        );
      }
      return;
    }
    case 'wasm':
      await prepareWasm();
      return;
    case 'native': {
      await prepareWasm();
      const { registerNativeBackend } = await import('./native-kernels.js');
      await registerNativeBackend();
      return;
    }
  }
}

let wasmReady: Promise<void> | undefined;

/** Loads tfjs-backend-wasm with its .wasm files from node_modules and registers our extra kernels. */
function prepareWasm(): Promise<void> {
  wasmReady ??= (async () => {
    let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm');
    try {
      wasmModule = await import('@tensorflow/tfjs-backend-wasm');
    } catch (error) {
      throw new AdvcorrectError(
        'ERR_BACKEND',
        `The 'wasm' backend could not be loaded: ${(error as Error).message}. Reinstall the npm packages (npm ci).`,
        { cause: error },
      );
    }
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasmModule.setWasmPaths(`${dir}${path.sep}`);
    const { registerWasmKernels } = await import('./wasm-kernels.js');
    registerWasmKernels('wasm');
    // Initialise it now so a broken .wasm file shows here, with a clear message.
    const previous = tf.getBackend();
    let ok = false;
    try {
      ok = await tf.setBackend('wasm');
    } catch (error) {
      throw new AdvcorrectError('ERR_BACKEND', `The 'wasm' backend failed to initialise: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (!ok) throw new AdvcorrectError('ERR_BACKEND', "The 'wasm' backend failed to initialise (its .wasm file did not load)");
    if (previous && previous !== 'wasm') await tf.setBackend(previous);
  })();
  return wasmReady;
}

/** The tfjs namespace this package computes with (one copy of @tensorflow/tfjs-core). */
export { tf };
