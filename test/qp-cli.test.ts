import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as highsModule from 'highs';
import type { Highs } from 'highs';
import { packageRoot } from '../lib/native.js';
import { readQps, readQpsFile } from '../lib/qp/qps-reader.js';
import { evaluatePrimal } from '../lib/qp/residuals.js';
import { readSolution, writeSolution } from '../lib/qp/solution.js';
import { cliPath, runCli } from './helpers/cli.js';

const cli = cliPath;
const marosDir = path.resolve(packageRoot, '..', 'shared', 'qp', 'maros-meszaros');

type HighsLoader = () => Promise<Highs>;
async function loadHighs(): Promise<Highs> {
  const mod = highsModule as unknown as { default: HighsLoader | { default: HighsLoader } };
  return (typeof mod.default === 'function' ? mod.default : mod.default.default)();
}

const run = runCli;

// A small convex QP with a general Hessian, a range row, an equality and bounds
// (written here, so these tests need no shared data).
const PROBLEM = `NAME CLIQP
ROWS
 N obj
 L budget
 E balance
 G floor
COLUMNS
 a obj -1 budget 1
 a balance 1
 b obj -2 budget 1
 b floor 1
 c obj 0.5 budget 1
 c balance -1 floor 1
RHS
 rhs budget 4 balance 0.5
 rhs floor 1 obj -3
RANGES
 rng budget 3
BOUNDS
 UP bnd a 2
 MI bnd c
 UP bnd c 5
QUADOBJ
 a a 2
 a b 0.5
 b b 1
 c c 3
ENDATA
`;

describe('advcorrect qp (CLI end to end)', function () {
  let dir: string;
  let problemFile: string;
  before(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qp-cli-'));
    problemFile = path.join(dir, 'cliqp.qps');
    await writeFile(problemFile, PROBLEM);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('qp solve --json prints one object with the documented fields and writes the .sol', async () => {
    const sol = path.join(dir, 'ours.sol');
    const r = await run('qp', 'solve', problemFile, '--solver', 'admm', '--tolerance', '1e-9', '--json', '--solution-out', sol);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const key of ['status', 'objective', 'iterations', 'solveTimeMs', 'residuals', 'solver']) assert.ok(key in out, key);
    assert.equal(out.status, 'solved');
    assert.equal(out.solver, 'admm');
    const residuals = out.residuals as { primal: number; dual: number; gap: number };
    assert.ok(residuals.primal < 1e-8 && residuals.dual < 1e-8, JSON.stringify(residuals));
    const parsed = readSolution(await readFile(sol, 'utf8'));
    assert.deepEqual(parsed.names, ['a', 'b', 'c']);
    assert.equal(parsed.objective, out.objective);
    const problem = readQps(PROBLEM);
    const ev = evaluatePrimal(problem, parsed.values);
    assert.equal(ev.objective, out.objective);
    assert.ok(ev.primal < 1e-8);
  });

  it('qp solve (human output) names the solver that auto picked and why', async () => {
    const r = await run('qp', 'solve', problemFile);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^solver\s+admm \(auto: dual solver does not apply \(Hessian has off-diagonal entries/m);
    assert.match(r.stdout, /^status\s+solved$/m);
    assert.match(r.stdout, /^residuals\s+primal /m);
  });

  it('qp convert → HiGHS → .sol → qp compare agrees with our own solution', async () => {
    const lpFile = path.join(dir, 'cliqp.lp');
    const conv = await run('qp', 'convert', problemFile, '--to', 'lp', '--out', lpFile);
    assert.equal(conv.code, 0, conv.stderr);
    const highs = await loadHighs();
    const hs = highs.solve(await readFile(lpFile, 'utf8'));
    assert.equal(hs.Status, 'Optimal');
    const names = Object.keys(hs.Columns);
    const highsSol = path.join(dir, 'highs.sol');
    await writeFile(highsSol, writeSolution(names, names.map((n) => hs.Columns[n].Primal), hs.ObjectiveValue));
    const oursSol = path.join(dir, 'ours2.sol');
    assert.equal((await run('qp', 'solve', problemFile, '--solver', 'admm', '--tolerance', '1e-10', '--solution-out', oursSol)).code, 0);

    const r = await run('qp', 'compare', problemFile, '--sol', highsSol, '--sol', oursSol, '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      solutions: Array<{ objective: number; objectiveInFile: number; maxViolation: number }>;
      comparisons: Array<{ objectiveDifference: number; distanceLinf: number; maxViolation: number }>;
    };
    assert.equal(out.solutions.length, 2);
    assert.ok(Math.abs(out.solutions[0].objective - hs.ObjectiveValue) < 1e-9 * Math.max(1, Math.abs(hs.ObjectiveValue)));
    assert.ok(out.solutions.every((s) => s.maxViolation < 1e-7));
    assert.equal(out.comparisons.length, 1);
    assert.ok(Math.abs(out.comparisons[0].objectiveDifference) < 1e-7, `objective difference ${out.comparisons[0].objectiveDifference}`);
    assert.ok(out.comparisons[0].distanceLinf < 1e-5, `distance ${out.comparisons[0].distanceLinf}`);

    // A perturbed solution is reported as such.
    const bad = path.join(dir, 'bad.sol');
    await writeFile(bad, 'a 10\nb 0\nc 0\n');
    const rb = await run('qp', 'compare', problemFile, '--sol', oursSol, '--sol', bad, '--json');
    const outBad = JSON.parse(rb.stdout) as {
      solutions: Array<{ maxViolation: number; boundViolation: number; worstVariable: string | null; worstRow: string | null }>;
    };
    // (a, b, c) = (10, 0, 0): balance a − c = 0.5 is off by 9.5 (the largest), a ≤ 2 by 8.
    assert.equal(outBad.solutions[1].worstRow, 'balance');
    assert.equal(outBad.solutions[1].maxViolation, 9.5);
    assert.equal(outBad.solutions[1].worstVariable, 'a');
    assert.equal(outBad.solutions[1].boundViolation, 8);
  });

  it('qp compare says which names of a .sol do not match the problem', async () => {
    const wrong = path.join(dir, 'wrong.sol');
    await writeFile(wrong, '# Objective value = 1\na 1\nb 2\nzz 3\n');
    const r = await run('qp', 'compare', problemFile, '--sol', wrong);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /wrong\.sol does not match problem 'CLIQP'/);
    assert.match(r.stderr, /'zz'/);
    assert.match(r.stderr, /no value for 1 variable\(s\): 'c'/);
  });

  it('qp convert --to qps round-trips through the reader', async () => {
    const out = path.join(dir, 'again.qps.gz');
    assert.equal((await run('qp', 'convert', problemFile, '--to', 'qps', '--out', out)).code, 0);
    const a = readQps(PROBLEM);
    const b = await readQpsFile(out);
    assert.deepEqual([...b.rowLower], [...a.rowLower]);
    assert.deepEqual([...b.varUpper], [...a.varUpper]);
    assert.equal(b.r, a.r);
  });

  it('malformed files and bad flags fail with clear messages and exit codes', async () => {
    const broken = path.join(dir, 'broken.qps');
    await writeFile(broken, PROBLEM.replace(' b floor 1', ' b flor 1'));
    const r = await run('qp', 'solve', broken);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /broken\.qps:11: unknown row 'flor'/);
    const flag = await run('qp', 'solve', problemFile, '--tolerance', '-1');
    assert.notEqual(flag.code, 0);
    assert.match(flag.stderr, /expected a positive number/);
    const dual = await run('qp', 'solve', problemFile, '--solver', 'dual');
    assert.equal(dual.code, 1);
    assert.match(dual.stderr, /dual solver does not apply to 'CLIQP': Hessian has off-diagonal entries/);
  });

  it('qp solve on a Maros–Mészáros file (gzip) reaches the reference objective', async function () {
    if (!existsSync(marosDir)) {
      console.log(`skipped: ${marosDir} is absent (the Maros–Mészáros set of ../shared)`);
      this.skip();
    }
    const r = await run('qp', 'solve', path.join(marosDir, 'QAFIRO.qps.gz'), '--json', '--tolerance', '1e-9');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { objective: number; status: string };
    const index = JSON.parse(await readFile(path.join(marosDir, 'index.json'), 'utf8')) as {
      problems: Array<{ name: string; objective_ref: number }>;
    };
    const ref = index.problems.find((p) => p.name === 'QAFIRO')!.objective_ref; // published, 8 digits
    assert.equal(out.status, 'solved');
    assert.ok(Math.abs(out.objective - ref) < 1e-6 * Math.max(1, Math.abs(ref)), `${out.objective} vs ${ref}`);
  });
});
