import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdvcorrectError } from './errors.js';

/** Root of the installed package (dist/lib/native.js is two levels below it). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const ADDON_FILE = 'advcorrect_native.node';

/** Where the addon is looked for, in order: $ADVCORRECT_NATIVE_PATH, then the cmake-js/node-gyp outputs. */
export function addonCandidates(): string[] {
  const candidates: string[] = [];
  const override = process.env.ADVCORRECT_NATIVE_PATH;
  if (override) candidates.push(path.resolve(override));
  candidates.push(path.join(packageRoot, 'build', 'Release', ADDON_FILE));
  candidates.push(path.join(packageRoot, 'build', 'Debug', ADDON_FILE));
  return candidates;
}

// The addon's exports are typed by the modules that wrap them (lib/qp, lib/backend, ...).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = Record<string, any>;

let cached: NativeAddon | undefined;

/** Loads the C++ addon once; throws an AdvcorrectError (ERR_NATIVE_MISSING) that says how to build it. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  // Idle OpenMP workers spin by default, which steals a core from tfjs and the other solver
  // thread on a 2-core machine; it must be set before the runtime starts, i.e. before loading.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  const require = createRequire(import.meta.url);
  const candidates = addonCandidates();
  const found = candidates.find((file) => existsSync(file));
  if (!found) {
    throw new AdvcorrectError(
      'ERR_NATIVE_MISSING',
      `The advcorrect native addon is not built (looked for ${candidates.join(', ')}).\n` +
        'Build it with `npm run build:native` (needs cmake ≥ 3.18, g++ and Eigen 3: ' +
        '`apt-get install cmake g++ libeigen3-dev` on Debian), or run `bash scripts/setup.sh`.',
    );
  }
  try {
    cached = require(found) as NativeAddon;
  } catch (error) {
    throw new AdvcorrectError(
      'ERR_NATIVE_MISSING',
      `The advcorrect native addon at ${found} failed to load: ${(error as Error).message}\n` +
        'It was probably built for another Node.js version or machine; rebuild it with `npm run build:native`.',
      { cause: error },
    );
  }
  return cached;
}
