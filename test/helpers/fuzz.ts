/**
 * A small seeded mutation fuzzer for the file readers (test/fuzz.test.ts, `npm run fuzz`).
 *
 * Each case takes one seed input and applies 1–4 mutations drawn from one seeded stream: bit
 * flips, random or "interesting" bytes and integers, inserted, deleted, duplicated or truncated
 * ranges, splices with another seed input, and tokens from a dictionary (numbers such as nan,
 * 1e400 or -0, path tricks, format keywords). The same (seed, case) always gives the same input.
 */
import { Random } from '../../lib/data/random.js';

const INTERESTING_U8 = [0, 1, 0x7f, 0x80, 0xff];
const INTERESTING_U32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x10000, 0xffff];

/** Tokens every text format gets, besides its own. */
export const COMMON_TOKENS = [
  'nan', 'NaN', '-nan', 'inf', '-inf', 'Infinity', '-Infinity', '1e400', '-1e400', '1e19', '-1e19', '1e308', '4.9e-324', '-0',
  '0', '1', '-1', '99999999999999999999', '0x10', '1e', '.', '-', '+', '', ' ', '\t', '\n', '\r\n', '\0', '\u00ff', '\ufffd',
  '../', '../../etc/passwd', '/etc/passwd', '..', '/', '\\', '"', "'", '#', '*', '{', '}', '[', ']', ',', ':', 'null', 'true',
];

export interface FuzzCase {
  index: number;
  /** Which seed input it started from. */
  base: number;
  data: Uint8Array;
}

export class Mutator {
  private readonly random: Random;
  private readonly encoder = new TextEncoder();

  constructor(
    seed: number,
    private readonly seeds: Uint8Array[],
    private readonly tokens: readonly string[],
    /** Largest input produced (bytes). */
    private readonly maxLength = 1 << 16,
  ) {
    if (seeds.length === 0) throw new RangeError('at least one seed input is needed');
    this.random = new Random(seed);
  }

  /** The next case. */
  next(index: number): FuzzCase {
    const base = this.random.nextInt(this.seeds.length);
    let data: Uint8Array = Uint8Array.from(this.seeds[base]);
    const count = 1 + this.random.nextInt(4);
    for (let k = 0; k < count; k++) data = this.mutate(data);
    if (data.length > this.maxLength) data = data.subarray(0, this.maxLength);
    return { index, base, data };
  }

  private int(n: number): number {
    return n <= 0 ? 0 : this.random.nextInt(n);
  }

  private mutate(data: Uint8Array): Uint8Array {
    const r = this.random;
    const at = this.int(data.length + 1);
    switch (r.nextInt(11)) {
      case 0: {
        // flip one bit
        if (data.length === 0) return data;
        const out = Uint8Array.from(data);
        out[this.int(data.length)] ^= 1 << r.nextInt(8);
        return out;
      }
      case 1: {
        // a random or interesting byte
        if (data.length === 0) return data;
        const out = Uint8Array.from(data);
        out[this.int(data.length)] = r.next() < 0.5 ? r.nextInt(256) : INTERESTING_U8[r.nextInt(INTERESTING_U8.length)];
        return out;
      }
      case 2: {
        // an interesting 32-bit integer, little- or big-endian (sizes, offsets, counts)
        if (data.length < 4) return data;
        const out = Uint8Array.from(data);
        const view = new DataView(out.buffer);
        view.setUint32(this.int(data.length - 3), INTERESTING_U32[r.nextInt(INTERESTING_U32.length)], r.next() < 0.5);
        return out;
      }
      case 3: {
        // a 16-bit field set to 0 or 0xffff (zip lengths, npy header length)
        if (data.length < 2) return data;
        const out = Uint8Array.from(data);
        new DataView(out.buffer).setUint16(this.int(data.length - 1), r.next() < 0.5 ? 0 : 0xffff, true);
        return out;
      }
      case 4: {
        // delete a range
        const length = 1 + this.int(Math.min(64, data.length));
        const start = this.int(Math.max(0, data.length - length) + 1);
        return concat(data.subarray(0, start), data.subarray(start + length));
      }
      case 5: {
        // duplicate a range
        const length = 1 + this.int(Math.min(256, data.length));
        const start = this.int(Math.max(0, data.length - length) + 1);
        return concat(data.subarray(0, at), data.subarray(start, start + length), data.subarray(at));
      }
      case 6:
        // truncate
        return data.subarray(0, at);
      case 7: {
        // insert random bytes
        const bytes = Uint8Array.from({ length: 1 + r.nextInt(16) }, () => r.nextInt(256));
        return concat(data.subarray(0, at), bytes, data.subarray(at));
      }
      case 8: {
        // splice: the head of this input with the tail of another seed
        const other = this.seeds[r.nextInt(this.seeds.length)];
        return concat(data.subarray(0, at), other.subarray(this.int(other.length + 1)));
      }
      case 9:
      case 10: {
        // a dictionary token, inserted or replacing the token at a random place
        const token = this.encoder.encode(this.tokens[r.nextInt(this.tokens.length)]);
        if (r.next() < 0.5) return concat(data.subarray(0, at), token, data.subarray(at));
        let end = at;
        while (end < data.length && !isSeparator(data[end])) end++;
        let start = at;
        while (start > 0 && !isSeparator(data[start - 1])) start--;
        return concat(data.subarray(0, start), token, data.subarray(end));
      }
    }
    return data;
  }
}

function isSeparator(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x09 || byte === 0x2c || byte === 0x3a || byte === 0x22;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Case counts: FUZZ_CASES (per reader) and FUZZ_SEED from the environment, else the given defaults. */
export function fuzzSettings(defaultCases: number, defaultSeed: number): { cases: number; seed: number } {
  const cases = process.env.FUZZ_CASES !== undefined ? Number(process.env.FUZZ_CASES) : defaultCases;
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : defaultSeed;
  if (!Number.isInteger(cases) || cases < 1) throw new RangeError(`FUZZ_CASES must be a positive integer, got ${process.env.FUZZ_CASES}`);
  if (!Number.isFinite(seed)) throw new RangeError(`FUZZ_SEED must be a number, got ${process.env.FUZZ_SEED}`);
  return { cases, seed };
}
