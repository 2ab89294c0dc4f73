/**
 * `npm run bench:scale`: how the cut pool scales with the number of parameters, written to
 * docs/benchmarks/scale.md (and scale.json).
 *
 *  1. Pool figures against n: MLPs 784–h–h–10 (mlp-wide with BuildOptions.width h) from n ≈ 4·10⁴
 *     to 2·10⁷, each case in its own child process. An iteration is what the loop does with the
 *     pool: the margin rows of 10 new MNIST test images (all 9 wrong classes) and one clean-loss
 *     row (256 training images) at w₀, appended, then a warm dual solve. Stored rows (CutPool,
 *     rows as the loop appends them: dense when more than half non-zero, else sparse) run where
 *     their estimate fits; at the largest n the stored case runs until the pool refuses under an
 *     injected limit ($ADVCORRECT_MEMORY_LIMIT), to show where that path stops.
 *  2. The end-to-end correction of the trained 2·10⁷-parameter mlp-wide (cached, trained once:
 *     2 epochs of the MNIST recipe) with `advcorrect correct --rows factored`, 10 adversarial
 *     examples, one round; peak RSS of the process and its wall time.
 *
 *   --widths a,b     hidden widths (default 48,160,512,1024,2048,4096)
 *   --iterations k   pool iterations per case (default 4)
 *   --skip-e2e       only the pool figures      --skip-pool   only the end-to-end run
 *   --e2e-iterations m   inner iterations of the end-to-end run (default 3)
 *   --no-write       print, do not touch docs/
 *   --skip-pool --skip-e2e   re-render scale.md from scale.json
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset } from '../lib/data/index.js';
import { AdvcorrectError } from '../lib/errors.js';
import { buildModel, mlpWideParams } from '../lib/models/architectures.js';
import { factoredLayout, factoredMarginRows, factoredRowDot } from '../lib/models/factored-rows.js';
import { cleanLossGradient, marginRows } from '../lib/models/index.js';
import { cachedZooModel } from '../lib/models/zoo.js';
import { ParameterView } from '../lib/models/parameters.js';
import { CutPool } from '../lib/qp/cut-pool.js';
import { FactoredCutPool } from '../lib/qp/factored-pool.js';
import { MEMORY_LIMIT_ENV } from '../lib/qp/memory.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const run = promisify(execFile);

const DEFAULT_WIDTHS = [48, 160, 512, 1024, 2048, 4096];
/** Stored cases run when their rows are estimated to take at most this much. */
const STORED_BUDGET = 3 * 2 ** 30;
/** The limit injected into the stored case beyond the budget (the pool refuses there). */
const STORED_PROBE_LIMIT = '2G';
const E2E_COMMAND = (model: string, out: string, iterations: number) => [
  'correct', '--model', model, '--rows', 'factored', '--rounds', '1', '--iterations', String(iterations), '--n-adv', '10',
  '--adv-candidates', '200', '--clean-size', '1000', '--eval-n', '10000', '--pgd-n', '0', '--attacks', 'fgsm', '--sweep', 'none', '--out', out, '--json', '--quiet',
];

interface IterationFigure {
  rows: number;
  rowsMs: number;
  appendMs: number;
  solveMs: number;
  /** CPU time of the process (all threads) during the solve. */
  solveCpuMs: number;
  setupMs: number;
  residualMs: number;
  qpIterations: number;
  status: string;
  poolBytes: number;
  rssBytes: number;
}

interface CaseFigure {
  width: number;
  n: number;
  path: 'stored' | 'factored';
  iterations: IterationFigure[];
  peakRssBytes: number;
  refused?: string;
  load: number[];
}

function args(name: string): string | undefined {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1] : undefined;
}

function loadavg(): number[] {
  return os.loadavg().map((v) => Math.round(v * 10) / 10);
}

function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** One case, in this (child) process. */
async function poolCase(width: number, kind: 'stored' | 'factored', iterations: number): Promise<CaseFigure> {
  await initBackend();
  const test = await loadDataset('mnist', 'test');
  const train = await loadDataset('mnist', 'train');
  const model = buildModel('mlp-wide', { seed: 1, width });
  const view = new ParameterView(model);
  const n = view.size;
  const w0 = view.read();
  const layout = factoredLayout(model, view);
  const pool = kind === 'factored' ? new FactoredCutPool(n, layout.blocks) : new CutPool(n);
  const figure: CaseFigure = { width, n, path: kind, iterations: [], peakRssBytes: 0, load: loadavg() };
  const size = 784;
  const clean = { images: train.images.subarray(0, 256 * size), labels: train.labels.subarray(0, 256) };
  try {
    for (let k = 0; k < iterations; k++) {
      const images = test.images.subarray(10 * k * size, 10 * (k + 1) * size);
      const labels = test.labels.subarray(10 * k, 10 * (k + 1));
      let rowsMs = 0;
      let appendMs = 0;
      let t = performance.now();
      let count = 0;
      if (kind === 'factored') {
        const rows = await factoredMarginRows(model, view, images, labels, { delta: 3, classes: 'all' });
        const uppers = rows.rows.map((row, r) => factoredRowDot(layout, row, w0) - rows.value[r]!);
        rowsMs += performance.now() - t;
        t = performance.now();
        rows.rows.forEach((row, r) => (pool as FactoredCutPool).appendFactored(row, -Infinity, uppers[r]!));
        count += rows.count;
        appendMs += performance.now() - t;
      } else {
        const rows = await marginRows(model, view, images, labels, { delta: 3, classes: 'all', format: 'sparse' });
        rowsMs += performance.now() - t;
        t = performance.now();
        for (let r = 0; r < rows.count; r++) {
          const { index, value } = rows.sparse![r]!;
          let dot = 0;
          for (let q = 0; q < index.length; q++) dot += value[q]! * w0[index[q]!]!;
          const upper = dot - rows.value[r]!;
          if (index.length * 2 > n) {
            const dense = new Float32Array(n);
            for (let q = 0; q < index.length; q++) dense[index[q]!] = value[q]!;
            (pool as CutPool).appendDense(dense, -Infinity, upper);
          } else (pool as CutPool).appendSparse(index, value, -Infinity, upper);
          rows.sparse![r] = { index: new Int32Array(0), value: new Float32Array(0) };
          count++;
        }
        appendMs += performance.now() - t;
      }
      t = performance.now();
      const { loss, gradient } = await cleanLossGradient(model, view, clean.images, clean.labels);
      let dot = 0;
      for (let i = 0; i < n; i++) dot += gradient[i]! * w0[i]!;
      rowsMs += performance.now() - t;
      t = performance.now();
      pool.appendDense(gradient, -Infinity, dot - 0.05 * loss);
      appendMs += performance.now() - t;
      count++;
      const w0Copy = Float64Array.from(w0);
      const cpu0 = process.cpuUsage();
      t = performance.now();
      const result = await pool.solve(w0Copy, { tolerance: 1e-8 });
      const solveMs = performance.now() - t;
      const cpu = process.cpuUsage(cpu0);
      const solveCpuMs = (cpu.user + cpu.system) / 1000;
      figure.iterations.push({
        rows: count,
        rowsMs,
        appendMs,
        solveMs,
        solveCpuMs,
        setupMs: (result as { setupTimeMs?: number }).setupTimeMs ?? 0,
        residualMs: result.residualTimeMs ?? 0,
        qpIterations: result.iterations,
        status: result.status,
        poolBytes: pool.memoryBytes(),
        rssBytes: process.memoryUsage().rss,
      });
      process.stderr.write(`  ${kind} h=${width}: iteration ${k + 1} ${count} rows, solve ${solveMs.toFixed(0)} ms (${result.status}), pool ${(pool.memoryBytes() / 2 ** 20).toFixed(1)} MiB\n`);
    }
  } catch (error) {
    if (!(error instanceof AdvcorrectError) || error.code !== 'ERR_NO_MEMORY') throw error;
    figure.refused = `${error.message} (after ${pool.size} rows, pool ${pool.memoryBytes()} bytes)`;
  } finally {
    pool.dispose();
  }
  figure.peakRssBytes = peakRss();
  return figure;
}

/** Rough bytes of the stored rows of `iterations` iterations at width h (dense float32 upper bound). */
function storedEstimate(width: number, iterations: number): number {
  return 4 * mlpWideParams(width) * 91 * iterations;
}

async function child(width: number, kind: 'stored' | 'factored', iterations: number, env: NodeJS.ProcessEnv = {}): Promise<CaseFigure> {
  const { stdout } = await run(process.execPath, [fileURLToPath(import.meta.url), '--case', `${width}:${kind}:${iterations}`], {
    env: { ...process.env, ...env },
    maxBuffer: 1 << 26,
  }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`case ${width}:${kind} failed: ${error.stderr ?? error.message}`);
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as CaseFigure;
}

interface EndToEnd {
  command: string;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  load: { start: number[]; end: number[] };
  result: Record<string, unknown>;
}

/** The CLI in this (child) process, with its peak RSS written at exit. */
async function e2eChild(report: string, cli: string[]): Promise<void> {
  process.on('exit', () => {
    // Synchronous write: the process is ending.
    const fsSync = require_('node:fs') as typeof import('node:fs');
    const usage = process.resourceUsage();
    fsSync.writeFileSync(report, JSON.stringify({ peakRssBytes: peakRss(), cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6 }));
  });
  process.argv = [process.argv[0]!, path.join(root, 'dist', 'lib', 'cli', 'main.js'), ...cli];
  await import('../lib/cli/main.js');
}

// A require for the exit handler (ESM has none).
import { createRequire } from 'node:module';
const require_ = createRequire(import.meta.url);

async function endToEnd(iterations: number): Promise<EndToEnd> {
  const model = await cachedZooModel('mlp-wide', { onLog: (line) => process.stderr.write(`${line}\n`) });
  const out = path.join(os.tmpdir(), `advcorrect-scale-e2e-${process.pid}`);
  await rm(out, { recursive: true, force: true });
  const report = `${out}.rss.json`;
  const cli = E2E_COMMAND(model, out, iterations);
  const start = loadavg();
  const t = performance.now();
  await run(process.execPath, [fileURLToPath(import.meta.url), '--e2e-child', report, ...cli], { maxBuffer: 1 << 28, env: process.env });
  const wallSeconds = (performance.now() - t) / 1000;
  const end = loadavg();
  const result = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as Record<string, unknown>;
  const { peakRssBytes, cpuSeconds } = JSON.parse(await readFile(report, 'utf8')) as { peakRssBytes: number; cpuSeconds: number };
  return { command: `advcorrect ${cli.join(' ').replace(model, '<cached mlp-wide>/model.json').replace(out, '<out>')}`, wallSeconds, cpuSeconds, peakRssBytes, load: { start, end }, result };
}

const mib = (b: number) => (b / 2 ** 20).toFixed(b < 2 ** 24 ? 2 : 0);
const gib = (b: number) => (b / 2 ** 30).toFixed(2);

function render(cases: CaseFigure[], e2e: EndToEnd | undefined, command: string): string {
  const lines: string[] = [];
  lines.push('# Scale: stored and factored cut pools against n, and a 2·10⁷-parameter correction', '');
  lines.push(`Generated by \`${command}\` (bench/scale.ts) on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, ${gib(os.totalmem())} GiB, at nice 10 beside other work: the load average (1, 5, 15 min) is given with each figure.`, '');
  lines.push('## The pool against n', '');
  lines.push('MLP 784–h–h–10 (untrained, seed 1). One iteration = the margin rows of 10 new MNIST test images (9 wrong classes each: 90 rows) and one clean-loss row over 256 training images, at w₀, appended to the pool, then a warm dual solve (ε 1e-8). Per case: the mean over its iterations of the time to make the rows (forward/backward, and for stored rows compressing them), to append them, and of the solve (fold into G, A w₀, iterations, w and the residual check); the pool\'s own `memoryBytes()` and the child process\'s peak RSS after the last iteration.', '');
  lines.push('| h | n | rows | iterations | rows made (ms/it) | append (ms/it) | solve (ms/it) | solve CPU (ms/it, both cores) | of it: fold + A w₀ / w + residuals (ms/it) | last solve | pool after (MiB) | pool per row (KiB) | peak RSS (MiB) | load |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of cases) {
    const its = c.iterations;
    const mean = (f: (i: IterationFigure) => number) => (its.length ? (its.reduce((s, i) => s + f(i), 0) / its.length).toFixed(0) : '—');
    const last = its[its.length - 1];
    const rows = its.reduce((s, i) => s + i.rows, 0);
    lines.push(
      `| ${c.width} | ${c.n.toLocaleString('en-US')} | ${c.path} | ${its.length}${c.refused ? ' (refused)' : ''} | ${mean((i) => i.rowsMs)} | ${mean((i) => i.appendMs)} | ${mean((i) => i.solveMs)} | ${mean((i) => i.solveCpuMs)} | ${mean((i) => i.setupMs)} / ${mean((i) => i.residualMs)} | ${last ? `${last.solveMs.toFixed(0)} ms, ${last.qpIterations} its, ${last.status}` : '—'} | ${last ? mib(last.poolBytes) : '—'} | ${last ? (last.poolBytes / rows / 1024).toFixed(1) : '—'} | ${mib(c.peakRssBytes)} | ${c.load.join(', ')} |`,
    );
  }
  const refused = cases.filter((c) => c.refused);
  if (refused.length) {
    lines.push('', '### Where stored rows stop', '');
    for (const c of refused) {
      lines.push(`- h = ${c.width} (n = ${c.n.toLocaleString('en-US')}), stored rows, run with \`${MEMORY_LIMIT_ENV}=${STORED_PROBE_LIMIT}\` (the default limit is half the memory, ${gib(os.totalmem() / 2)} GiB): after ${c.iterations.length} complete iteration(s) the pool refused: "${c.refused}". An iteration adds about ${gib(storedEstimate(c.width, 1))} GiB of float32 rows at this n (91 rows × n × 4 bytes, less where rows are sparse enough to be kept as index/value pairs), so a run of 20 iterations would need about ${gib(storedEstimate(c.width, 20))} GiB for the rows alone. The peak RSS of the case (${mib(c.peakRssBytes)} MiB) also holds the JS copies of the iteration's rows, which the loop's linearise keeps until they are appended (marginRows' sparse rows).`);
    }
  }
  if (e2e) {
    type Eval = { clean: { accuracy: number }; fgsm: { eps: number; accuracy: number } };
    const r = e2e.result as {
      before: Eval;
      after: Eval;
      adversarial: { count: number; correctBefore: number; correctAfter: number; violationBefore: number; violationAfter: number };
      timing: { adversarialMs: number; correctionMs: number; evaluationMs: number };
      iterations: Array<{ iteration: number; cutsTotal: number; qpTimeMs: number; qpIterations: number; qpStatus: string; timeMs: number; misclassified: number; violation: number }>;
      distance: number;
      relativeDistance: number;
      cleanLossBefore: number;
      cleanLossAfter: number;
      eta: number;
      totalQpTimeMs: number;
    };
    const pct = (v: number) => `${(100 * v).toFixed(2)} %`;
    lines.push('', '## End to end: correcting the 2·10⁷-parameter mlp-wide', '');
    lines.push('The cached mlp-wide (784–4096–4096–10, 20,037,642 parameters, trained 2 epochs: `advcorrect train --arch mlp-wide --epochs 2 --batch-size 256 --seed 1`), corrected with factored rows, one round of 3 iterations:', '');
    lines.push('```', e2e.command, '```', '');
    lines.push(`Load ${e2e.load.start.join(', ')} at the start, ${e2e.load.end.join(', ')} at the end (nice 10).`, '');
    lines.push('| | before | after |', '|---|---|---|');
    lines.push(`| clean accuracy, MNIST test (10,000) | ${pct(r.before.clean.accuracy)} | ${pct(r.after.clean.accuracy)} |`);
    lines.push(`| FGSM ε ${r.before.fgsm.eps} accuracy, MNIST test (10,000) | ${pct(r.before.fgsm.accuracy)} | ${pct(r.after.fgsm.accuracy)} |`);
    lines.push(`| X̃ (${r.adversarial.count} PGD examples): correct / violation V | ${r.adversarial.correctBefore} / ${r.adversarial.violationBefore.toFixed(1)} | ${r.adversarial.correctAfter} / ${r.adversarial.violationAfter.toFixed(1)} |`);
    lines.push(`| clean loss (η = ${r.eta.toFixed(4)}) | ${r.cleanLossBefore.toFixed(4)} | ${r.cleanLossAfter.toFixed(4)} |`, '');
    lines.push(`‖w − w₀‖ = ${r.distance.toFixed(4)} (relative ${r.relativeDistance.toExponential(2)}). Times: X̃ ${(r.timing.adversarialMs / 1000).toFixed(0)} s, the correction ${(r.timing.correctionMs / 1000).toFixed(0)} s (of it ${(r.totalQpTimeMs / 1000).toFixed(0)} s in QPs), the two test evaluations ${(r.timing.evaluationMs / 1000).toFixed(0)} s; the whole command ${e2e.wallSeconds.toFixed(0)} s wall, ${e2e.cpuSeconds.toFixed(0)} s of process CPU time (both cores). **Peak RSS ${gib(e2e.peakRssBytes)} GiB.**`, '');
    lines.push('| iteration | cuts | QP | QP time (ms) | iteration time (ms) | X̃ wrong after | V after |', '|---|---|---|---|---|---|---|');
    for (const it of r.iterations) lines.push(`| ${it.iteration} | ${it.cutsTotal} | ${it.qpStatus}, ${it.qpIterations} its | ${it.qpTimeMs.toFixed(0)} | ${it.timeMs.toFixed(0)} | ${it.misclassified} | ${it.violation.toFixed(1)} |`);
  }
  lines.push('');
  return lines.join('\n');
}

async function main(): Promise<void> {
  const caseArg = args('--case');
  if (caseArg) {
    const [w, kind, it] = caseArg.split(':');
    process.stdout.write(`${JSON.stringify(await poolCase(Number(w), kind as 'stored' | 'factored', Number(it)))}\n`);
    return;
  }
  const e2eReport = args('--e2e-child');
  if (e2eReport) {
    const k = process.argv.indexOf('--e2e-child');
    await e2eChild(e2eReport, process.argv.slice(k + 2));
    return;
  }
  const widths = (args('--widths') ?? DEFAULT_WIDTHS.join(',')).split(',').map(Number);
  const iterations = Number(args('--iterations') ?? 4);
  const command = `npm run bench:scale${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const cases: CaseFigure[] = [];
  const jsonFile = path.join(root, 'docs', 'benchmarks', 'scale.json');
  const previous = existsSync(jsonFile) ? (JSON.parse(await readFile(jsonFile, 'utf8')) as { cases: CaseFigure[]; e2e?: EndToEnd; command?: string }) : undefined;
  if (!process.argv.includes('--skip-pool')) {
    for (const width of widths) {
      process.stderr.write(`h = ${width} (n = ${mlpWideParams(width)}), load ${loadavg().join(', ')}\n`);
      cases.push(await child(width, 'factored', iterations));
      if (storedEstimate(width, iterations) <= STORED_BUDGET) cases.push(await child(width, 'stored', iterations));
      else cases.push(await child(width, 'stored', iterations, { [MEMORY_LIMIT_ENV]: STORED_PROBE_LIMIT }));
    }
  } else if (previous) cases.push(...previous.cases);
  let e2e: EndToEnd | undefined = previous?.e2e;
  if (!process.argv.includes('--skip-e2e')) e2e = await endToEnd(Number(args('--e2e-iterations') ?? 3));
  // Only re-rendering (both parts skipped): the page keeps the command that measured it.
  const shown = process.argv.includes('--skip-pool') && process.argv.includes('--skip-e2e') && previous?.command ? previous.command : command;
  const page = render(cases, e2e, shown);
  process.stdout.write(page);
  if (!process.argv.includes('--no-write')) {
    await mkdir(path.dirname(jsonFile), { recursive: true });
    await writeFile(jsonFile, `${JSON.stringify({ command: shown, cases, e2e }, null, 1)}\n`);
    await writeFile(path.join(root, 'docs', 'benchmarks', 'scale.md'), page);
  }
}

await main();
