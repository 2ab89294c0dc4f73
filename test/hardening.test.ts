/**
 * The bad-input cases of issue 13, one test each: non-finite numbers, infeasible and tiny QPs,
 * paths outside a model's folder, crash-safe directory replacement (a child process SIGKILLs
 * itself between the steps), memory failures, size caps and the CLI's messages and exit codes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { AdvcorrectError } from '../lib/errors.js';
import { packageRoot } from '../lib/native.js';
import { ensureDir, replaceDirAtomic, writeFileAtomic } from '../lib/util/files.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from '../lib/correction/checkpoint.js';
import { buildModel, exportNpz, importNpz, loadModel, saveModel } from '../lib/models/index.js';
import { trainModel } from '../lib/models/train.js';
import { CutPool } from '../lib/qp/cut-pool.js';
import { readQps, readQpsFile } from '../lib/qp/qps-reader.js';
import { readSolution } from '../lib/qp/solution.js';
import { solveQp } from '../lib/qp/solve.js';
import type { QuadraticProgram } from '../lib/qp/types.js';
import { cliPath, runCli } from './helpers/cli.js';

const cli = cliPath;
const distLib = path.join(packageRoot, 'dist', 'lib');

const run = runCli;

/** Runs an ES module snippet in a child node; resolves with its exit code/signal and output. */
function runChild(source: string, shellPrefix = ''): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const args = ['--input-type=module', '-e', source];
    const child = shellPrefix
      ? spawn('bash', ['-c', `${shellPrefix}; exec "$0" "$@"`, process.execPath, ...args])
      : spawn(process.execPath, args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function rejectsWith(code: string, pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof AdvcorrectError, `expected an AdvcorrectError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

/** x ≥ 0, Σx ≤ −1, P = I: infeasible (a QPS text). */
function infeasibleQps(n: number): string {
  const lines = ['NAME INFEAS', 'ROWS', ' N obj', ' L sum', 'COLUMNS'];
  for (let j = 0; j < n; j++) lines.push(` x${j} sum 1`);
  lines.push('RHS', ' rhs sum -1', 'QUADOBJ');
  for (let j = 0; j < n; j++) lines.push(` x${j} x${j} 1`);
  lines.push('ENDATA');
  return `${lines.join('\n')}\n`;
}

describe('hardening (issue 13)', function () {
  let tmp: string;
  let previousBackend: string | undefined;
  before(async () => {
    previousBackend = tf.getBackend();
    await tf.setBackend('cpu');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-hardening-'));
  });
  after(async () => {
    if (previousBackend && previousBackend !== 'cpu') await tf.setBackend(previousBackend);
    await rm(tmp, { recursive: true, force: true });
  });

  describe('non-finite numbers', function () {
    it('an .npz with a NaN weight is refused at load, naming the tensor and the first bad index', async () => {
      const file = path.join(tmp, 'nan.npz');
      const model = buildModel('cnnlight', { seed: 1 });
      await exportNpz(model, 'cnnlight', file);
      model.dispose();
      // Patch one float of conv2.weight [16, 8, 3, 3] in the stored archive: element [1, 2, 0, 1].
      const bytes = await readFile(file);
      const { parseNpz, encodeNpz } = await import('../lib/models/npz.js');
      const arrays = parseNpz(bytes);
      const conv2 = arrays.get('conv2.weight')!;
      (conv2.data as Float32Array)[((1 * 8 + 2) * 3 + 0) * 3 + 1] = NaN;
      await writeFile(file, encodeNpz(arrays));
      await assert.rejects(loadModel(file, { arch: 'cnnlight' }), rejectsWith('ERR_NON_FINITE', /conv2\.weight holds NaN at \[1, 2, 0, 1\]/));
    });

    it('a tfjs weights.bin with an Infinity is refused at load, naming the weight', async () => {
      const dir = path.join(tmp, 'inf-model');
      const model = buildModel('fc', { seed: 2 });
      await saveModel(model, dir, { arch: 'fc' });
      model.dispose();
      const bin = await readFile(path.join(dir, 'weights.bin'));
      const floats = new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4);
      floats[5] = Infinity; // the first weight's sixth value
      await writeFile(path.join(dir, 'weights.bin'), bin);
      await assert.rejects(loadModel(dir), rejectsWith('ERR_NON_FINITE', /weight .* holds Infinity at \[0, 5\]/));
      // The CLI says so in one line before any evaluation.
      const r = await run('eval', '--model', dir, '--dataset', 'mnist', '--n', '10');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^advcorrect: .*holds Infinity at \[0, 5\]: model weights must be finite numbers$/m);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      // correct fails at load too, before any evaluation of the "before" model.
      const c = await run('correct', '--model', dir, '--dataset', 'mnist', '--out', path.join(tmp, 'nan-run'));
      assert.equal(c.code, 1, c.stderr);
      assert.match(c.stderr, /holds Infinity at \[0, 5\]/);
      assert.doesNotMatch(c.stderr, /evaluat/i);
    });

    it('training stops with ERR_NON_FINITE when the loss diverges (learning rate 1e30)', async () => {
      const count = 64;
      const images = new Float32Array(count * 28 * 28);
      for (let i = 0; i < images.length; i++) images[i] = ((i * 7919) % 255) / 255;
      const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
      const data = { name: 'synthetic', images, labels, count, height: 28, width: 28, channels: 1, numClasses: 10 } as unknown as Parameters<typeof trainModel>[1];
      const model = buildModel('fc', { seed: 3 });
      try {
        await assert.rejects(trainModel(model, data, { epochs: 3, batchSize: 16, learningRate: 1e30 }), rejectsWith('ERR_NON_FINITE', /training diverged/));
      } finally {
        model.dispose();
      }
    });

    it('train --lr 1e30 exits 1 and saves no model', async () => {
      const out = path.join(tmp, 'diverged');
      const r = await run('train', '--arch', 'fc', '--dataset', 'mnist', '--epochs', '1', '--train-size', '256', '--test-size', '10', '--lr', '1e30', '--out', out, '--quiet');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /training diverged/);
      assert.equal(existsSync(path.join(out, 'model.json')), false);
    });

    it('solveQp refuses a NaN row bound in every solver path (it was dropped by auto/dual)', async () => {
      const problem = readQps('NAME T\nROWS\n N obj\n L r1\n L r2\nCOLUMNS\n x r1 1 r2 1\nRHS\n rhs r1 1 r2 2\nQUADOBJ\n x x 1\nENDATA\n');
      problem.rowUpper[1] = NaN;
      for (const solver of ['auto', 'dual', 'admm'] as const) {
        await assert.rejects(solveQp(problem, { solver }), (error: unknown) => {
          assert.ok(error instanceof RangeError, `${solver}: ${String(error)}`);
          assert.equal(error.message, 'r2 has a NaN bound');
          return true;
        });
      }
      const q = readQps('NAME T\nROWS\n N obj\nCOLUMNS\n x obj 1\nQUADOBJ\n x x 1\nENDATA\n');
      q.q[0] = Infinity;
      await assert.rejects(solveQp(q), /the objective coefficient of x is Infinity/);
    });

    it('a .sol with inf or nan values is a parse error, and qp compare --json exits 1', async () => {
      assert.throws(() => readSolution('x inf\n', { fileName: 'a.sol' }), rejectsWith('ERR_PARSE', /^a\.sol:1: value 'inf' of 'x' is not a finite number$/));
      assert.throws(() => readSolution('x 1\ny -Infinity\n', { fileName: 'b.sol' }), rejectsWith('ERR_PARSE', /^b\.sol:2: /));
      assert.throws(() => readSolution('x 1e400\n'), rejectsWith('ERR_PARSE', /not a finite number/));
      const qps = path.join(tmp, 'one.qps');
      await writeFile(qps, 'NAME ONE\nROWS\n N obj\nCOLUMNS\n x obj 1\nQUADOBJ\n x x 1\nENDATA\n');
      const sol = path.join(tmp, 'inf.sol');
      await writeFile(sol, '# Objective value = 0\nx inf\n');
      const r = await run('qp', 'compare', qps, '--sol', sol, '--json');
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /inf\.sol:2: value 'inf' of 'x' is not a finite number/);
    });
  });

  describe('infeasible and tiny QPs', function () {
    it('the dual solver proves x ≥ 0, Σx ≤ −1 (n = 1000) infeasible with a certificate that verifies', async () => {
      const problem = readQps(infeasibleQps(1000));
      const result = await solveQp(problem, { solver: 'dual' });
      assert.equal(result.status, 'primal_infeasible');
      const y = result.certificate!;
      const z = (result as unknown as { boundCertificate: Float64Array }).boundCertificate;
      assert.ok(y && z, 'certificate present');
      // Aᵀy + z = 0 and the support Σ y·bound < 0, checked here from the problem data.
      let stationarity = 0;
      for (let j = 0; j < 1000; j++) stationarity = Math.max(stationarity, Math.abs(y[0] + z[j]));
      const support = (y[0] > 0 ? y[0] * problem.rowUpper[0] : y[0] * problem.rowLower[0]) + z.reduce((s, v, j) => s + (v > 0 ? v * problem.varUpper[j] : v < 0 ? v * problem.varLower[j] : 0), 0);
      assert.ok(stationarity < 1e-9, `‖Aᵀy + z‖ = ${stationarity}`);
      assert.ok(support < -0.5, `support ${support}`);
    });

    it('qp solve exits 4 on that problem (it was solved_inaccurate with exit 0)', async () => {
      const file = path.join(tmp, 'infeasible.qps');
      await writeFile(file, infeasibleQps(1000));
      const r = await run('qp', 'solve', file, '--json');
      assert.equal(r.code, 4, r.stderr);
      const out = JSON.parse(r.stdout) as { status: string; exitCode: number; timeLimit: number };
      assert.equal(out.status, 'primal_infeasible');
      assert.equal(out.exitCode, 4);
      assert.equal(out.timeLimit, 600); // the default limit
    });

    it('qp solve stops at --time-limit (exit 7) and at Ctrl-C (exit 130) on a problem the dual solver cannot finish', async function () {
      this.timeout(60_000);
      const file = path.join(tmp, 'huge-infeasible.qps');
      await writeFile(file, infeasibleQps(20_000));
      const limited = await run('qp', 'solve', file, '--solver', 'dual', '--time-limit', '1', '--json');
      assert.equal(limited.code, 7, limited.stderr);
      assert.equal((JSON.parse(limited.stdout) as { status: string }).status, 'time_limit_reached');
      assert.match(limited.stderr, /stopped at the time limit of 1 s/);
      const child = spawn(process.execPath, [cli, 'qp', 'solve', file, '--solver', 'dual', '--time-limit', '0']);
      let stderr = '';
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      await new Promise<void>((resolve) =>
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('qp solve: iteration')) resolve();
        }),
      );
      child.kill('SIGINT');
      assert.equal(await closed, 130, stderr);
      assert.match(stdout, /^status\s+aborted$/m);
    });

    it("--solver auto solves tiny QPs: no rows, only a free row, no columns (the dual solver said 'the cut pool is empty')", async () => {
      const noRows = readQps('NAME A\nROWS\n N obj\nCOLUMNS\n x obj 1\n y obj -4\nBOUNDS\n UP BND y 1\n FR BND x\nQUADOBJ\n x x 2\n y y 2\nENDATA\n');
      const a = await solveQp(noRows);
      assert.equal(a.status, 'solved');
      assert.deepEqual([...a.x], [-0.5, 1]); // min x² + x → −½; min y² − 4y on y ≤ 1 → 1
      assert.ok(a.check.dual < 1e-12 && a.check.primal === 0, JSON.stringify(a.check));
      const freeRow = readQps('NAME B\nROWS\n N obj\n N free\nCOLUMNS\n x obj -2 free 3\nQUADOBJ\n x x 1\nENDATA\n');
      const b = await solveQp(freeRow);
      assert.equal(b.status, 'solved');
      assert.deepEqual([...b.x], [2]);
      const noColumns = readQps('NAME C\nROWS\n N obj\nCOLUMNS\nRHS\n rhs obj -7\nENDATA\n');
      const c = await solveQp(noColumns);
      assert.equal(c.status, 'solved');
      assert.equal(c.check.objective, 7);
    });

    it('crossed bounds are a primal_infeasible result naming the variable or row', async () => {
      const qps = 'NAME X\nROWS\n N obj\n L r\nCOLUMNS\n speed obj 1 r 1\nRHS\n rhs r 5\nBOUNDS\n LO BND speed 2\n UP BND speed 1\nQUADOBJ\n speed speed 1\nENDATA\n';
      for (const solver of ['auto', 'dual', 'admm'] as const) {
        const result = await solveQp(readQps(qps), { solver });
        assert.equal(result.status, 'primal_infeasible', solver);
        assert.equal(result.message, 'variable speed has lower bound 2 > upper bound 1');
      }
      const file = path.join(tmp, 'crossed.qps');
      await writeFile(file, qps);
      const r = await run('qp', 'solve', file);
      assert.equal(r.code, 4);
      assert.match(r.stdout, /^status\s+primal_infeasible \(variable speed has lower bound 2 > upper bound 1\)$/m);
    });

    it('CutPool.solve() after dispose() throws AdvcorrectError ERR_DISPOSED', async () => {
      const pool = new CutPool(3);
      pool.appendDense(Float64Array.of(1, 1, 1), -Infinity, 1);
      pool.dispose();
      await assert.rejects(pool.solve(new Float64Array(3)), rejectsWith('ERR_DISPOSED', /disposed/));
      assert.throws(() => pool.size, rejectsWith('ERR_DISPOSED', /disposed/));
      assert.throws(() => pool.appendDense(Float64Array.of(1, 0, 0), -Infinity, 1), rejectsWith('ERR_DISPOSED', /disposed/));
      pool.dispose(); // a second dispose is harmless
    });
  });

  describe('paths stay inside the model folder', function () {
    let dir: string;
    before(async () => {
      dir = path.join(tmp, 'paths');
      const model = buildModel('fc', { seed: 4 });
      await saveModel(model, path.join(dir, 'model'), { arch: 'fc' });
      model.dispose();
      await mkdir(path.join(dir, 'outside'), { recursive: true });
      await writeFile(path.join(dir, 'outside', 'weights.bin'), await readFile(path.join(dir, 'model', 'weights.bin')));
    });

    async function withPath(weightsPath: string): Promise<string> {
      const json = JSON.parse(await readFile(path.join(dir, 'model', 'model.json'), 'utf8')) as { weightsManifest: Array<{ paths: string[] }> };
      json.weightsManifest[0].paths = [weightsPath];
      const file = path.join(dir, 'model', `m${Math.random().toString(16).slice(2)}.json`);
      await writeFile(file, JSON.stringify(json));
      return file;
    }

    it('refuses an absolute weights path', async () => {
      const file = await withPath(path.join(dir, 'outside', 'weights.bin'));
      await assert.rejects(loadModel(file), rejectsWith('ERR_MODEL', /is absolute; files must be named relative to/));
      await assert.rejects(loadModel(await withPath('/etc/passwd')), rejectsWith('ERR_MODEL', /"\/etc\/passwd" is absolute/));
    });

    it("refuses a '..' path that climbs out", async () => {
      await assert.rejects(loadModel(await withPath('../outside/weights.bin')), rejectsWith('ERR_MODEL', /"\.\.\/outside\/weights\.bin" leads outside/));
      // '..' that stays inside is fine.
      await mkdir(path.join(dir, 'model', 'sub'), { recursive: true });
      const loaded = await loadModel(await withPath('sub/../weights.bin'));
      loaded.model.dispose();
    });

    it('refuses a symbolic link that leads out', async () => {
      await symlink(path.join(dir, 'outside', 'weights.bin'), path.join(dir, 'model', 'link.bin'));
      await assert.rejects(loadModel(await withPath('link.bin')), rejectsWith('ERR_MODEL', /symbolic link that leads outside/));
    });
  });

  describe('crash-safe directory replacement', function () {
    const steps = ['filled', 'completed', 'moved-old', 'moved-new', 'removed-old'] as const;
    const checkpointsJs = path.join(distLib, 'correction', 'checkpoint.js');

    for (const [k, step] of steps.entries()) {
      it(`a SIGKILL after step ${k + 1} (${step}) of a checkpoint swap leaves a checkpoint that loads, and no temporaries`, async function () {
        this.timeout(30_000);
        const out = path.join(tmp, `kill-${step}`);
        const child = await runChild(`
          import { saveCheckpoint } from ${JSON.stringify(checkpointsJs)};
          await saveCheckpoint(${JSON.stringify(out)}, { round: 1, w: Float64Array.of(1, 2) });
          await saveCheckpoint(${JSON.stringify(out)}, { round: 2, w: Float64Array.of(3, 4) }, {
            onStep: (step) => { if (step === ${JSON.stringify(step)}) process.kill(process.pid, 'SIGKILL'); },
          });
          console.log('not killed');
        `);
        assert.equal(child.signal, 'SIGKILL', child.stderr + child.stdout);
        assert.equal(await hasCheckpoint(out), true);
        const state = (await loadCheckpoint(out)) as { round: number; w: Float64Array };
        // Before the new copy is complete the old one stands; once it is complete, the new one.
        const expected = k < 2 ? 1 : 2;
        assert.equal(state.round, expected, `after ${step}`);
        assert.deepEqual([...state.w], expected === 1 ? [1, 2] : [3, 4]);
        assert.deepEqual((await readdir(out)).sort(), ['checkpoint']);
      });
    }

    it('stray temporaries of a killed output write are removed by the next write', async function () {
      this.timeout(30_000);
      const out = path.join(tmp, 'stray');
      const filesJs = path.join(distLib, 'util', 'files.js');
      const child = await runChild(`
        import { writeFile } from 'node:fs/promises';
        import { replaceDirAtomic } from ${JSON.stringify(filesJs)};
        await replaceDirAtomic(${JSON.stringify(path.join(out, 'model'))}, async (tmp) => {
          await writeFile(tmp + '/model.json', '{}');
          process.kill(process.pid, 'SIGKILL');
        });
      `);
      assert.equal(child.signal, 'SIGKILL');
      const left = await readdir(out);
      assert.equal(left.length, 1);
      assert.match(left[0], /^\.model\.\d+\.[0-9a-f]{8}\.tmp$/);
      await replaceDirAtomic(path.join(out, 'model'), (tmp) => writeFile(path.join(tmp, 'model.json'), '{"ok":true}'));
      assert.deepEqual(await readdir(out), ['model']);
      assert.equal(await readFile(path.join(out, 'model', 'model.json'), 'utf8'), '{"ok":true}');
    });

    it('output helpers turn ENOTDIR and EEXIST into one-line ERR_IO errors', async () => {
      const file = path.join(tmp, 'a-file');
      await writeFile(file, 'x');
      await assert.rejects(ensureDir(file), rejectsWith('ERR_IO', /^cannot create the directory .*a-file: a file of that name is in the way$/));
      await assert.rejects(ensureDir(path.join(file, 'sub')), rejectsWith('ERR_IO', /a part of the path is a file, not a directory$/));
      await assert.rejects(writeFileAtomic(path.join(file, 'x.json'), '{}'), rejectsWith('ERR_IO', /^cannot write .*x\.json: (a file of that name is in the way|a part of the path is a file, not a directory)$/));
      await assert.rejects(writeFileAtomic(path.join(file, 'sub', 'x.json'), '{}'), rejectsWith('ERR_IO', /^cannot write .*x\.json: a part of the path is a file, not a directory$/));
      await assert.rejects(saveCheckpoint(path.join(file, 'run'), { a: 1 }), rejectsWith('ERR_IO', /a part of the path is a file/));
      await assert.rejects(
        replaceDirAtomic(path.join(file, 'model'), async () => undefined),
        rejectsWith('ERR_IO', /^cannot create the directory .*a-file: a file of that name is in the way$/),
      );
    });

    it('correct --out onto a file, or below one, prints one line and exits 1', async () => {
      const file = path.join(tmp, 'out-file');
      await writeFile(file, 'x');
      for (const out of [file, path.join(file, 'sub')]) {
        // A model that loads: the run loads it before it creates --out, so the failure is the folder's.
        const model = path.join(packageRoot, 'test', 'fixtures', 'onnx', 'mnist_bn.onnx');
        const r = await run('correct', '--model', model, '--dataset', 'mnist', '--quiet', '--out', out);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, /^advcorrect: cannot create the directory .*out-file.*: (a file of that name is in the way|a part of the path is a file, not a directory)\n$/);
      }
    });
  });

  describe('memory and size limits', function () {
    it('std::bad_alloc in the addon becomes ERR_NO_MEMORY instead of an abort (child under ulimit -v)', async function () {
      this.timeout(60_000);
      const cutPoolJs = path.join(distLib, 'qp', 'cut-pool.js');
      const child = await runChild(
        `
        import { CutPool } from ${JSON.stringify(cutPoolJs)};
        const n = 2e8;
        let w0;
        try { w0 = new Float64Array(n); } catch (e) { console.log('JS-ALLOC ' + e.message); process.exit(0); }
        try {
          const pool = new CutPool(n);
          pool.appendSparse(Int32Array.of(0, n - 1), Float64Array.of(1, 1), -Infinity, 1);
          const r = await pool.solve(w0);
          console.log('STATUS ' + r.status);
        } catch (e) { console.log('ERROR ' + e.name + ' ' + e.code + ' ' + e.message); }
        `,
        'ulimit -v 2600000',
      );
      if (child.stdout.startsWith('JS-ALLOC')) {
        console.log(`skipped: under ulimit -v 2600000 this node cannot allocate the 1.6 GB test vector (${child.stdout.trim()})`);
        this.skip();
      }
      assert.equal(child.signal, null, `the child died of ${child.signal}: ${child.stderr}`);
      assert.equal(child.code, 0, child.stderr);
      assert.match(child.stdout, /^ERROR AdvcorrectError ERR_NO_MEMORY cut pool: out of memory/);
    });

    it('qp solve /dev/zero ends with a size error, not a dead heap', async function () {
      this.timeout(120_000);
      if (!existsSync('/dev/zero')) {
        console.log('skipped: no /dev/zero');
        this.skip();
      }
      await assert.rejects(readQpsFile('/dev/zero', { maxBytes: 1 << 20 }), rejectsWith('ERR_TOO_LARGE', /^\/dev\/zero is larger than 1 MiB, the limit for a QPS file$/));
      const r = await run('qp', 'solve', '/dev/zero');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^advcorrect: \/dev\/zero is larger than .* MiB, the limit for a QPS file\n$/);
    });

    it('QPS, npz and model.json inputs have size caps with a clear message', async () => {
      const big = path.join(tmp, 'big.qps');
      await writeFile(big, infeasibleQps(100));
      await assert.rejects(readQpsFile(big, { maxBytes: 1000 }), rejectsWith('ERR_TOO_LARGE', /big\.qps is larger than 1000 bytes, the limit for a QPS file \(it has .* KiB\)/));
      const { gzipSync } = await import('node:zlib');
      const bomb = gzipSync(Buffer.alloc(1 << 20, 0x20));
      assert.throws(() => readQps(bomb, { fileName: 'bomb.qps.gz', maxBytes: 1 << 16 }), rejectsWith('ERR_TOO_LARGE', /bomb\.qps\.gz: the gzipped QPS text is larger than 64 KiB/));
      const { readNpz } = await import('../lib/models/npz.js');
      const npz = path.join(tmp, 'cap.npz');
      const model = buildModel('fc', { seed: 5 });
      await exportNpz(model, 'fc', npz);
      model.dispose();
      await assert.rejects(readNpz(npz, { maxBytes: 4096 }), rejectsWith('ERR_TOO_LARGE', /cap\.npz is larger than 4 KiB, the limit for a \.npz file/));
      const { MODEL_JSON_MAX_BYTES } = await import('../lib/models/io.js');
      assert.equal(MODEL_JSON_MAX_BYTES, 64 * 2 ** 20);
      const hugeJson = path.join(tmp, 'huge', 'model.json');
      await mkdir(path.dirname(hugeJson), { recursive: true });
      const { truncate } = await import('node:fs/promises');
      await writeFile(hugeJson, '');
      await truncate(hugeJson, MODEL_JSON_MAX_BYTES + 1); // sparse: no disk used
      await assert.rejects(loadModel(hugeJson), rejectsWith('ERR_TOO_LARGE', /model\.json is larger than 64 MiB, the limit for a model\.json/));
    });
  });

  describe('npz import blames the right file', function () {
    it('--arch resnet8 on an MNIST model says wrong --arch, not missing BatchNorm statistics', async () => {
      const file = path.join(tmp, 'mnist-like.npz');
      const model = buildModel('cnnlight', { seed: 6 });
      await exportNpz(model, 'cnnlight', file);
      model.dispose();
      await assert.rejects(importNpz(file, 'resnet8'), (error: unknown) => {
        assert.ok(error instanceof AdvcorrectError);
        assert.equal(error.code, 'ERR_MODEL');
        assert.match(error.message, /mnist-like\.npz lacks \d+ tensors of a resnet8: .*\(wrong --arch\?\)$/);
        assert.doesNotMatch(error.message, /BatchNorm|bn_stats/);
        return true;
      });
      const r = await run('eval', '--model', file, '--arch', 'resnet8', '--dataset', 'cifar10', '--n', '10');
      assert.equal(r.code, 1);
      assert.match(r.stderr, /wrong --arch/);
    });

    it('a wrong --bn-stats file is named as the culprit, not the model', async () => {
      const file = path.join(tmp, 'resnet.npz');
      const model = buildModel('resnet8', { seed: 7 });
      await exportNpz(model, 'resnet8', file);
      model.dispose();
      const loaded = await importNpz(file, 'resnet8');
      loaded.model.dispose();
      const other = path.join(tmp, 'other.npz');
      const cnn = buildModel('cnnlight', { seed: 8 });
      await exportNpz(cnn, 'cnnlight', other);
      cnn.dispose();
      await assert.rejects(importNpz(file, 'resnet8', { bnStats: other }), (error: unknown) => {
        assert.ok(error instanceof AdvcorrectError);
        assert.match(error.message, /^.*other\.npz lacks \d+ BatchNorm statistics of a resnet8: .*\(wrong --bn-stats file\?\)$/);
        return true;
      });
    });
  });

  describe('CLI usage errors', function () {
    it('qp compare without --sol says so and exits 2 (it exited 1 silently)', async () => {
      const qps = path.join(tmp, 'compare.qps');
      await writeFile(qps, 'NAME ONE\nROWS\n N obj\nCOLUMNS\n x obj 1\nQUADOBJ\n x x 1\nENDATA\n');
      const r = await run('qp', 'compare', qps);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, 'advcorrect: qp compare needs at least one --sol FILE (a Gurobi-style solution of the problem)\n');
    });

    it('a bad flag value exits 2 with commander’s message', async () => {
      const r = await run('qp', 'solve', 'x.qps', '--tolerance', 'abc');
      assert.equal(r.code, 2);
      assert.match(r.stderr, /expected a number, got 'abc'/);
    });
  });
});
