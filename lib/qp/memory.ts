/**
 * How much the cut pools may hold: the rows of a pool (and the stored-row estimate the correction
 * uses to pick its row path) are checked against this limit before they are allocated, so a pool
 * that would not fit refuses with AdvcorrectError ERR_NO_MEMORY instead of the process being killed
 * by the kernel. The limit is $ADVCORRECT_MEMORY_LIMIT (bytes, or with a K/M/G suffix: "512M",
 * "8G") when set, else half of the machine's physical memory.
 */
import os from 'node:os';
import { AdvcorrectError } from '../errors.js';

export const MEMORY_LIMIT_ENV = 'ADVCORRECT_MEMORY_LIMIT';

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses "123", "512M", "8G" (binary units, case-insensitive, optional trailing B). */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(text);
  if (!match) throw new RangeError(`expected a byte size such as 800000000, 512M or 8G, got '${text}'`);
  const bytes = Number(match[1]) * UNITS[match[2]!.toUpperCase()]!;
  if (!(bytes > 0) || !Number.isFinite(bytes)) throw new RangeError(`a byte size must be positive, got '${text}'`);
  return Math.floor(bytes);
}

/** The limit in bytes: $ADVCORRECT_MEMORY_LIMIT, else half of the physical memory. */
export function poolMemoryLimit(): number {
  const fromEnv = process.env[MEMORY_LIMIT_ENV]?.trim();
  if (fromEnv) {
    try {
      return parseByteSize(fromEnv);
    } catch (error) {
      throw new RangeError(`environment variable ${MEMORY_LIMIT_ENV}: ${(error as Error).message}`);
    }
  }
  return Math.floor(os.totalmem() / 2);
}

function mib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The way out for stored rows: keep them as factors. */
export const FACTORED_HINT =
  "keep the cut rows as factors instead: correction option rows: 'factored' (CLI --rows factored), the matrix-free FactoredCutPool of lib/qp/factored-pool.ts";

/** The refusal: what would not fit, and the way out. */
export function poolMemoryError(what: string, neededBytes: number, limitBytes: number, hint = FACTORED_HINT): AdvcorrectError {
  return new AdvcorrectError(
    'ERR_NO_MEMORY',
    `${what} would need ${mib(neededBytes)}, more than the memory limit of ${mib(limitBytes)} ` +
      `(half of the physical memory, or $${MEMORY_LIMIT_ENV}); ${hint}`,
  );
}

/** Throws poolMemoryError when the pool's `currentBytes` plus `addBytes` exceed the limit. */
export function checkPoolMemory(what: string, currentBytes: number, addBytes: number, limitBytes = poolMemoryLimit(), hint = FACTORED_HINT): void {
  if (currentBytes + addBytes > limitBytes) throw poolMemoryError(what, currentBytes + addBytes, limitBytes, hint);
}
