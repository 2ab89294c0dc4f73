/**
 * `advcorrect qp solve|compare|convert`: solve a QPS file, compare solution files on a problem,
 * convert between QPS and CPLEX LP.
 */
import { Command, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { AdvcorrectError } from '../errors.js';
import { writeLp } from '../qp/lp-writer.js';
import { readQpsFile } from '../qp/qps-reader.js';
import { writeQps } from '../qp/qps-writer.js';
import { distance, evaluatePrimal } from '../qp/residuals.js';
import { readSolutionFile, solutionVector, writeSolutionFile } from '../qp/solution.js';
import { solveQp, DEFAULT_QP_TOLERANCE, type QpSolverChoice } from '../qp/solve.js';
import type { QuadraticProgram } from '../qp/types.js';
import type { QpStatus } from '../qp/types.js';
import { parseNonNegativeNumber, parsePositiveInteger, parsePositiveNumber, printJson, renamedFlag } from './common.js';

/** Exit code of `qp solve` for each status (docs/errors.md). */
export const QP_EXIT_CODES: Record<QpStatus, number> = {
  solved: 0,
  solved_inaccurate: 3,
  primal_infeasible: 4,
  dual_infeasible: 5,
  iteration_limit_reached: 6,
  time_limit_reached: 7,
  non_convex: 8,
  aborted: 130,
};

/** `qp solve`'s wall-clock limit in seconds unless --time-limit says otherwise (0: none). */
export const DEFAULT_QP_TIME_LIMIT_S = 600;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  return Math.abs(value) >= 1e6 || Math.abs(value) < 1e-3 ? value.toExponential(digits) : String(Number(value.toPrecision(digits + 4)));
}

async function writeOut(file: string, text: string): Promise<void> {
  if (file === '-') {
    process.stdout.write(text);
    return;
  }
  try {
    await writeFile(file, file.endsWith('.gz') ? gzipSync(text, { level: 9 }) : text);
  } catch (error) {
    throw new AdvcorrectError('ERR_IO', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}

function sizeOf(problem: QuadraticProgram): { n: number; m: number; nnzA: number; nnzP: number } {
  const n = problem.q.length;
  return { n, m: problem.rowLower.length, nnzA: problem.A.colPtr[n], nnzP: problem.P.colPtr[n] };
}

interface SolveFlags {
  solver: QpSolverChoice;
  tolerance: number;
  timeLimit: number;
  maxIterations?: number;
  json?: boolean;
  solutionOut?: string;
  quiet?: boolean;
}

async function solveCommand(file: string, flags: SolveFlags): Promise<void> {
  const readStart = performance.now();
  const problem = await readQpsFile(file);
  const readTimeMs = performance.now() - readStart;
  const size = sizeOf(problem);
  const controller = new AbortController();
  const onSigint = (): void => controller.abort(new Error('interrupted (SIGINT)'));
  process.once('SIGINT', onSigint);
  let lastReport = Date.now();
  const progress = (p: { iteration: number; primalResidual: number; dualResidual: number; elapsedMs: number }): void => {
    if (flags.quiet) return;
    const now = Date.now();
    if (now - lastReport < 2000) return;
    lastReport = now;
    process.stderr.write(
      `qp solve: iteration ${p.iteration}, primal ${fmt(p.primalResidual)}, dual ${fmt(p.dualResidual)}, ${(p.elapsedMs / 1000).toFixed(1)}s\n`,
    );
  };
  let result;
  try {
    result = await solveQp(problem, {
      solver: flags.solver,
      tolerance: flags.tolerance,
      timeLimitMs: flags.timeLimit > 0 ? flags.timeLimit * 1000 : undefined,
      maxIterations: flags.maxIterations,
      signal: controller.signal,
      onProgress: progress,
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  if (flags.solutionOut) {
    await writeSolutionFile(
      flags.solutionOut,
      problem.varNames,
      result.x,
      result.check.objective,
      `Solution for model ${problem.name} (advcorrect qp solve, solver ${result.solverUsed}, status ${result.status})`,
    );
  }
  const residuals = { primal: result.check.primal, dual: result.check.dual, gap: result.check.gap };
  if (flags.json) {
    printJson({
      problem: problem.name,
      file,
      ...size,
      status: result.status,
      objective: result.check.objective,
      iterations: result.iterations,
      solveTimeMs: result.solveTimeMs,
      readTimeMs,
      residuals,
      solverResiduals: result.residuals,
      solver: result.solverUsed,
      solverReason: result.solverReason,
      message: result.message ?? null,
      exitCode: QP_EXIT_CODES[result.status],
      tolerance: flags.tolerance,
      timeLimit: flags.timeLimit,
      solutionFile: flags.solutionOut ?? null,
    });
  } else {
    const lines = [
      `problem     ${problem.name} (${file})`,
      `size        n = ${size.n}, m = ${size.m}, nnz(A) = ${size.nnzA}, nnz(P upper) = ${size.nnzP}`,
      `solver      ${result.solverUsed} (${result.solverReason})`,
      `status      ${result.status}${result.message ? ` (${result.message})` : ''}`,
      `objective   ${result.check.objective}`,
      `iterations  ${result.iterations}`,
      `time        ${result.solveTimeMs.toFixed(1)} ms solve, ${readTimeMs.toFixed(1)} ms read`,
      `residuals   primal ${fmt(residuals.primal)}, dual ${fmt(residuals.dual)}, gap ${fmt(residuals.gap)} (absolute, recomputed)`,
    ];
    if (flags.solutionOut) lines.push(`solution    ${flags.solutionOut}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (result.status === 'time_limit_reached' && !flags.quiet)
    process.stderr.write(`qp solve: stopped at the time limit of ${flags.timeLimit} s (raise it with --time-limit, 0 for none)\n`);
  process.exitCode = QP_EXIT_CODES[result.status] ?? 1;
}

async function compareCommand(file: string, flags: { sol: string[]; json?: boolean }): Promise<void> {
  if (flags.sol.length === 0) throw new RangeError('qp compare needs at least one --sol FILE (a Gurobi-style solution of the problem)');
  const problem = await readQpsFile(file);
  const points: Array<{ file: string; x: Float64Array; fileObjective?: number }> = [];
  for (const solFile of flags.sol) {
    const sol = await readSolutionFile(solFile);
    points.push({ file: solFile, x: solutionVector(problem, sol, solFile), fileObjective: sol.objective });
  }
  const evaluations = points.map((p) => {
    const e = evaluatePrimal(problem, p.x);
    return {
      file: p.file,
      objective: e.objective,
      objectiveInFile: p.fileObjective ?? null,
      maxViolation: e.primal,
      rowViolation: e.rowViolation,
      boundViolation: e.boundViolation,
      worstRow: e.worstRow >= 0 ? problem.rowNames[e.worstRow] : null,
      worstVariable: e.worstVariable >= 0 ? problem.varNames[e.worstVariable] : null,
    };
  });
  const comparisons = points.slice(1).map((p, k) => {
    const a = evaluations[0];
    const b = evaluations[k + 1];
    const d = distance(points[0].x, p.x);
    const difference = b.objective - a.objective;
    return {
      reference: a.file,
      other: b.file,
      objectiveDifference: difference,
      relativeObjectiveDifference: Math.abs(difference) / Math.max(1, Math.abs(a.objective)),
      distanceL2: d.l2,
      distanceLinf: d.linf,
      maxViolation: Math.max(a.maxViolation, b.maxViolation),
    };
  });
  if (flags.json) {
    printJson({ problem: problem.name, file, ...sizeOf(problem), solutions: evaluations, comparisons });
    return;
  }
  const lines = [`problem ${problem.name} (${file}), n = ${problem.q.length}, m = ${problem.rowLower.length}`];
  for (const e of evaluations) {
    lines.push(
      `${e.file}: objective ${e.objective}` +
        (e.objectiveInFile !== null ? ` (file says ${e.objectiveInFile})` : '') +
        `, max violation ${fmt(e.maxViolation)} (rows ${fmt(e.rowViolation)}${e.worstRow ? ` at ${e.worstRow}` : ''}, ` +
        `bounds ${fmt(e.boundViolation)}${e.worstVariable ? ` at ${e.worstVariable}` : ''})`,
    );
  }
  for (const c of comparisons) {
    lines.push(
      `${c.other} vs ${c.reference}: objective difference ${fmt(c.objectiveDifference)} (relative ${fmt(c.relativeObjectiveDifference)}), ` +
        `distance ‖Δx‖₂ ${fmt(c.distanceL2)}, ‖Δx‖∞ ${fmt(c.distanceLinf)}, max violation ${fmt(c.maxViolation)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function convertCommand(file: string, flags: { to: 'lp' | 'qps'; out: string }): Promise<void> {
  const problem = await readQpsFile(file);
  const text = flags.to === 'lp' ? writeLp(problem) : writeQps(problem);
  await writeOut(flags.out, text);
  if (flags.out !== '-') process.stderr.write(`qp convert: wrote ${flags.out} (${flags.to}, n = ${problem.q.length}, m = ${problem.rowLower.length})\n`);
}

export function register(program: Command): void {
  const qp = program.command('qp').description('Solve, compare and convert convex QPs (QPS, CPLEX LP, Gurobi .sol)');

  const solve = qp.command('solve');
  solve
    .description('Solve a convex QP from a (gzipped) QPS file')
    .argument('<file>', 'QPS file (free MPS + QUADOBJ), .gz allowed')
    .addOption(
      new Option('--solver <name>', "'dual' (positive diagonal Hessian only), 'admm' (any convex QP), or 'auto' (dual where it fits)")
        .choices(['auto', 'dual', 'admm'])
        .default('auto'),
    )
    .option('--tolerance <tol>', 'target absolute accuracy (dual: KKT tolerance; ADMM: absolute tolerance, relative tolerance 0)', parsePositiveNumber, DEFAULT_QP_TOLERANCE)
    .option('--time-limit <seconds>', 'wall-clock limit for the solve (0: none)', parseNonNegativeNumber, DEFAULT_QP_TIME_LIMIT_S)
    .option('--max-iterations <n>', 'iteration limit', parsePositiveInteger)
    .option('--solution-out <file>', 'write the solution as a Gurobi-style .sol file')
    .option('--json', 'print one JSON object on stdout')
    .option('--quiet', 'no progress lines on stderr')
    .addHelpText(
      'after',
      '\nResiduals are recomputed from the problem data (absolute ∞-norms: primal violation, ‖Px+q+Aᵀy+z‖, duality gap).\n' +
        'Exit code by status (the result is printed in every case): 0 solved, 3 solved_inaccurate, 4 primal_infeasible,\n' +
        '5 dual_infeasible, 6 iteration_limit_reached, 7 time_limit_reached, 8 non_convex, 130 aborted (Ctrl-C);\n' +
        '1 for an unreadable or malformed file, 2 for bad arguments (docs/errors.md).',
    )
    .action(solveCommand);
  renamedFlag(solve, '--eps', '--tolerance');
  renamedFlag(solve, '--max-iter', '--max-iterations');

  qp.command('compare')
    .description('Evaluate solution files on a problem: objective, violation, objective difference and distance between them')
    .argument('<problem>', 'QPS file the solutions belong to')
    .option('--sol <file>', 'Gurobi-style .sol file (repeat: the first is the reference)', collect, [] as string[])
    .option('--json', 'print one JSON object on stdout')
    .action(compareCommand);

  qp.command('convert')
    .description('Convert a QPS file to CPLEX LP or (normalised) QPS, e.g. for gurobi_cl ResultFile=x.sol problem.lp')
    .argument('<file>', 'QPS file, .gz allowed')
    .addOption(new Option('--to <format>', 'output format').choices(['lp', 'qps']).makeOptionMandatory())
    .requiredOption('--out <file>', "output file ('-' for stdout; a .gz name is gzipped)")
    .action(convertCommand);
}
