/**
 * Seeded mutation fuzzing of the file readers: QPS, .sol, npz, IDX and model.json. Every input
 * must end in a result whose numbers are usable (finite, or ±Infinity where the format means a
 * missing bound) or in an AdvcorrectError — never another exception, a crash, or a case that takes
 * seconds of CPU time (CPU, not wall-clock time: a machine busy with other work slows the wall clock,
 * not the work a case does). A failure names the reader, the seed and the case, and saves the input to a file.
 *
 * In `npm test`: FUZZ_CASES (default 2,000) cases per reader from seed FUZZ_SEED (default 13).
 * `npm run fuzz` runs 50,000 per reader from a seed of the clock (printed).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync, gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { AdvcorrectError } from '../lib/errors.js';
import { encodeIdx, parseIdx } from '../lib/data/idx.js';
import { buildModel, diskIOHandler, encodeNpy, encodeNpz, loadModel, parseNpz, saveModel } from '../lib/models/index.js';
import { checkProblemShape } from '../lib/qp/sparse.js';
import { readQps } from '../lib/qp/qps-reader.js';
import { writeQps } from '../lib/qp/qps-writer.js';
import { readSolution, writeSolution } from '../lib/qp/solution.js';
import { COMMON_TOKENS, fuzzSettings, Mutator, type FuzzCase } from './helpers/fuzz.js';

const { cases: CASES, seed: SEED } = fuzzSettings(2000, 13);
/** A single case using more CPU time than this (the whole process, milliseconds) counts as a hang. */
const SLOW_CASE_CPU_MS = 2000;

const encoder = new TextEncoder();
const text = (s: string): Uint8Array => encoder.encode(s);

function allFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw new Error(`${what}[${i}] is ${values[i]}`);
}
function noNaN(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) if (Number.isNaN(values[i])) throw new Error(`${what}[${i}] is NaN`);
}

/**
 * Runs `cases` mutated inputs through `target` (which returns nothing or throws) and `check` (the
 * result's invariants). Only AdvcorrectError is an acceptable failure: the inputs are always of the
 * right type, so a TypeError or RangeError would be an internal error escaping the reader.
 */
async function fuzz(
  name: string,
  seeds: Uint8Array[],
  tokens: readonly string[],
  target: (input: Uint8Array, c: FuzzCase) => unknown | Promise<unknown>,
): Promise<{ results: number; errors: number }> {
  console.log(`    fuzz ${name}: ${CASES} cases, seed ${SEED} (FUZZ_SEED=${SEED} FUZZ_CASES=${CASES} to repeat)`);
  const mutator = new Mutator(SEED, seeds, tokens);
  let results = 0;
  let errors = 0;
  for (let k = 0; k < CASES; k++) {
    const c = mutator.next(k);
    const cpuStart = process.cpuUsage();
    let failure: unknown;
    try {
      await target(c.data, c);
      results++;
    } catch (error) {
      if (error instanceof AdvcorrectError) errors++;
      else failure = error;
    }
    const cpu = process.cpuUsage(cpuStart);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    if (failure === undefined && cpuMs > SLOW_CASE_CPU_MS) failure = new Error(`took ${cpuMs.toFixed(0)} ms of CPU time`);
    if (failure !== undefined) {
      const saved = path.join(os.tmpdir(), `advcorrect-fuzz-${name}-seed${SEED}-case${k}.bin`);
      await writeFile(saved, c.data);
      assert.fail(
        `fuzz ${name}: seed ${SEED}, case ${k} (from seed input ${c.base}) ended in ${(failure as Error)?.stack ?? String(failure)}\n` +
          `input saved to ${saved}`,
      );
    }
  }
  // Both outcomes must occur, or the mutations are too mild (or too wild) to test anything.
  assert.ok(results > 0 && errors > 0, `fuzz ${name}: ${results} results and ${errors} errors`);
  return { results, errors };
}

// ---- seed inputs -----------------------------------------------------------------------------

const QPS_SEEDS = [
  `NAME FUZZ
ROWS
 N obj
 L budget
 E balance
 G floor
 N free
COLUMNS
 a obj -1 budget 1
 a balance 1
 b obj -2 budget 1
 b floor 1
 c obj 0.5 budget 1
 c balance -1 floor 1
 c free 2
RHS
 rhs budget 4 balance 0.5
 rhs floor 1 obj -3
RANGES
 rng budget 3
BOUNDS
 UP BND a 10
 LO BND b -1
 MI BND c
 FX BND d 2
QUADOBJ
 a a 2
 a b 0.5
 b b 1
 c c 3
ENDATA
`.replace(' FX BND d 2\n', ''),
  `NAME QM
OBJSENSE
 MIN
ROWS
 N cost
 G g1
COLUMNS
 x cost 1 g1 1
 y cost 1 g1 1
RHS
 RHS g1 1
BOUNDS
 FR BND x
 UP BND y -1
QMATRIX
 x x 2
 x y 1
 y x 1
 y y 2
ENDATA
`,
];

const QPS_TOKENS = [...COMMON_TOKENS, 'ROWS', 'COLUMNS', 'RHS', 'RANGES', 'BOUNDS', 'QUADOBJ', 'QMATRIX', 'ENDATA', 'NAME', ' N ', ' L ', ' G ', ' E ', 'UP', 'LO', 'FX', 'FR', 'MI', 'PL', 'BV', "'MARKER'", 'OBJSENSE', 'MAX'];

describe('fuzz: file readers never crash, hang or return non-finite numbers', function () {
  this.timeout(600_000);
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-fuzz-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('QPS reader (plain and gzipped)', async () => {
    const seeds = QPS_SEEDS.map(text);
    seeds.push(gzipSync(seeds[0]), text(writeQps(readQps(QPS_SEEDS[0]))));
    await fuzz('qps', seeds, QPS_TOKENS, (input) => {
      const problem = readQps(input, { fileName: 'fuzz.qps' });
      checkProblemShape(problem);
      allFinite(problem.q, 'q');
      allFinite(problem.P.values, 'P');
      allFinite(problem.A.values, 'A');
      if (!Number.isFinite(problem.r)) throw new Error(`r is ${problem.r}`);
      for (const [label, v] of [['rowLower', problem.rowLower], ['rowUpper', problem.rowUpper], ['varLower', problem.varLower], ['varUpper', problem.varUpper]] as const)
        noNaN(v, label);
      assert.equal(problem.varNames.length, problem.q.length);
      assert.equal(problem.rowNames.length, problem.rowLower.length);
    });
  });

  it('.sol reader', async () => {
    const seeds = [
      text(writeSolution(['a', 'b', 'c'], [1, -0.0025, 7], 3.5, 'Solution for model FUZZ')),
      text('# Objective value = 1e-3\n\nx0 1\nx1 2e10\n# comment\nx2 -3.5\n'),
    ];
    await fuzz('sol', seeds, COMMON_TOKENS, (input) => {
      const sol = readSolution(Buffer.from(input).toString('utf8'), { fileName: 'fuzz.sol' });
      allFinite(sol.values, 'values');
      assert.equal(sol.names.length, sol.values.length);
      if (sol.objective !== undefined && !Number.isFinite(sol.objective)) throw new Error(`objective ${sol.objective}`);
    });
  });

  it('npz reader (stored and deflated archives, every dtype)', async () => {
    const stored = encodeNpz({
      'conv.weight': { dtype: 'float32', shape: [2, 1, 2, 2], data: Float32Array.from({ length: 8 }, (_, i) => i / 8 - 0.3) },
      'fc.bias': { dtype: 'float64', shape: [3], data: Float64Array.of(1.5, -2, 0) },
      'bn.num_batches_tracked': { dtype: 'int64', shape: [], data: [7] },
      'idx': { dtype: 'int32', shape: [2, 2], data: Int32Array.of(1, 2, 3, 4) },
      'mask': { dtype: 'bool', shape: [3], data: Uint8Array.of(1, 0, 1) },
      'small': { dtype: 'int8', shape: [2], data: Int8Array.of(-3, 4) },
    });
    const deflated = deflateArchive(stored);
    await fuzz('npz', [stored, deflated], ['.npy', 'PK', "'descr'", "'<f4'", "'<f8'", "'>f4'", "'shape'", '(0,)', '(99999999999,)', 'True', 'False', '\x93NUMPY'], (input) => {
      const arrays = parseNpz(input, 'fuzz.npz');
      for (const [key, array] of arrays) {
        const count = array.shape.reduce((a, b) => a * b, 1);
        assert.equal(array.data.length, count, `${key}: ${array.data.length} values for shape [${array.shape.join(', ')}]`);
        allFinite(array.data as ArrayLike<number>, key);
      }
    });
  });

  it('IDX reader', async () => {
    const seeds = [
      encodeIdx({ dtype: 'uint8', dims: [2, 3, 3], data: Uint8Array.from({ length: 18 }, (_, i) => i * 13) }),
      encodeIdx({ dtype: 'float32', dims: [4], data: Float32Array.of(0.5, -1, 3e10, 0) }),
      encodeIdx({ dtype: 'int16', dims: [2, 2], data: Int16Array.of(-1, 2, -300, 4) }),
      encodeIdx({ dtype: 'float64', dims: [1, 2], data: Float64Array.of(1e-300, 2) }),
      encodeIdx({ dtype: 'int32', dims: [3], data: Int32Array.of(1, -2, 3) }),
    ];
    await fuzz('idx', seeds, COMMON_TOKENS, (input) => {
      const idx = parseIdx(input, 'fuzz.idx');
      const count = idx.dims.reduce((a, b) => a * b, 1);
      assert.equal(idx.data.length, count);
      allFinite(idx.data, 'data');
    });
  });

  it('model.json reader (topology, manifest, weights paths); every 25th case loads the whole model', async () => {
    const previous = tf.getBackend();
    await tf.setBackend('cpu');
    try {
      const dir = path.join(tmp, 'model');
      const model = buildModel('fc', { seed: 1 });
      await saveModel(model, dir, { arch: 'fc' });
      model.dispose();
      const seedJson = await readFile(path.join(dir, 'model.json'));
      const file = path.join(dir, 'fuzz.json');
      const tokens = [...COMMON_TOKENS, '"weights.bin"', '"../weights.bin"', '"/etc/passwd"', '"paths"', '"weights"', '"shape"', '"dtype"', '"float32"', '"units"', '"Dense"', '"Conv2D"', '"softmax"', '"class_name"', '"config"', '"layers"', '"graph-model"', '-1', '1e9', '[]', '{}'];
      await fuzz('model-json', [seedJson], tokens, async (input, c) => {
        await writeFile(file, input);
        if (c.index % 25 === 0) {
          const loaded = await loadModel(file);
          for (const w of loaded.model.weights) allFinite(w.read().dataSync() as Float32Array, w.originalName);
          loaded.model.dispose();
          return;
        }
        const artifacts = await diskIOHandler(file).load!();
        assert.ok(artifacts.modelTopology && typeof artifacts.modelTopology === 'object');
        assert.ok(Array.isArray(artifacts.weightSpecs));
      });
    } finally {
      if (previous) await tf.setBackend(previous);
    }
  });
});

/** The same archive with every entry deflated (central directory rebuilt), via zlib. */
function deflateArchive(stored: Uint8Array): Uint8Array {
  const arrays = parseNpz(stored);
  // encodeNpz writes stored entries only; build a deflated zip by hand from the .npy bytes.
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [key, array] of arrays) {
    const npy = encodeNpy(array);
    const data = deflateRawSync(npy);
    const name = Buffer.from(`${key}.npy`);
    const local = Buffer.alloc(30 + name.length);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(npy.length, 22);
    local.writeUInt16LE(name.length, 26);
    name.copy(local, 30);
    const central = Buffer.alloc(46 + name.length);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(npy.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    name.copy(central, 46);
    locals.push(local, data);
    centrals.push(central);
    offset += local.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(centrals.length, 8);
  end.writeUInt16LE(centrals.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}
