/**
 * The MNIST study of docs/results.md: adversary correction of the authors' CNNLight and CNN against
 * the conv1 bias shift matched in clean accuracy — the ω front, robustness against rounds R and
 * against |X̃| — with the worst case of the strongest attacks as the robust number, mean ± sd over
 * draws of X̃ (`--adv-offset` 1000·draw).
 *
 *   node dist/bench/results.js study  [--models cnnlight,cnn] [--draws 0,1,2,3] [--only front,rounds,sizes] [eval flags]
 *   node dist/bench/results.js run    --group NAME --model M [--draws 0] [--omegas 0,0.2,…] [--options JSON] [eval flags]
 *   node dist/bench/results.js render
 *
 * eval flags: --eval-n 2000 (clean, FGSM) --pgd-n 500 --attacks pgd,apgd-ce (strong attacks on the
 * first pgd-n test images; worst case per example with clean and FGSM) --shared DIR (default ../shared).
 *
 * One correction per (setting, draw) — exactly `advcorrect correct` with the options given (the
 * command is recorded) — and the answer of every ω in --omegas is taken from that run's final front
 * (chooseAnswer; ω acts only there, docs/correction.md). Records are appended to
 * docs/results-runs.jsonl (search runs too: --group search-…), the shift curves to
 * docs/results-shift.json, and docs/results.md (with docs/results-front.svg) is rewritten from them;
 * the analysis below the `<!-- analysis -->` marker of docs/results.md is kept.
 */
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset } from '../lib/data/datasets.js';
import { evaluate } from '../lib/attacks/index.js';
import { loadModel } from '../lib/models/io.js';
import { ParameterView } from '../lib/models/parameters.js';
import { packageRoot } from '../lib/native.js';
import { DEFAULT_CORRECTION_OPTIONS, resolveCorrectionOptions, upgradeSavedOptions, type CorrectionOptionsInput } from '../lib/correction/options.js';
import { chooseAnswer } from '../lib/correction/selection.js';
import { runCorrection, type CorrectionRunSettings, type RunIo } from '../lib/runs/index.js';
import { MODELS, SHIFTS, gitCommit, matchShift, meanSd, pctStat, robustness, shiftCurve, type Answer, type EvalSettings, type Robustness, type RunRecord, type ShiftPoint } from './study.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const OMEGAS = [...new Set([0, 0.2, 0.4, DEFAULT_CORRECTION_OPTIONS.omega, 0.6, 0.8, 1])].sort((a, b) => a - b);
const sharedModels = path.resolve(arg('shared', path.join(packageRoot, '..', 'shared')), 'models');
const runsFile = path.join(packageRoot, 'docs', 'results-runs.jsonl');
const shiftFile = path.join(packageRoot, 'docs', 'results-shift.json');
const resultsFile = path.join(packageRoot, 'docs', 'results.md');
const svgFile = path.join(packageRoot, 'docs', 'results-front.svg');

function evalSettings(): EvalSettings {
  return { evalN: Number(arg('eval-n', '2000')), pgdN: Number(arg('pgd-n', '500')), attacks: arg('attacks', 'pgd,apgd-ce').split(',') };
}


async function loadRecords(): Promise<RunRecord[]> {
  if (!existsSync(runsFile)) return [];
  return (await fs.readFile(runsFile, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as RunRecord)
    // Records written before 0.2.0 name some options the old way (qpEps): read them in today's names.
    .map((r) => ({ ...r, options: upgradeSavedOptions(r.options), resolved: upgradeSavedOptions(r.resolved) }));
}

async function loadShifts(): Promise<Record<string, ShiftPoint[]>> {
  return existsSync(shiftFile) ? (JSON.parse(await fs.readFile(shiftFile, 'utf8')) as Record<string, ShiftPoint[]>) : {};
}

const evalKey = (e: EvalSettings) => `${e.evalN}/${e.pgdN}/${e.attacks.join('+')}`;
/** The options in force for `options` given over today's defaults, ω left out (ω acts only on the final front). */
const resolvedOf = (options: Record<string, unknown>) => ({ ...resolveCorrectionOptions(options as CorrectionOptionsInput), omega: undefined }) as Record<string, unknown>;
/** Records of the same model, options in force and evaluation are one setting. */
const settingKey = (model: string, resolved: Record<string, unknown>, e: EvalSettings) => `${model}|${JSON.stringify({ ...resolved, omega: undefined })}|${evalKey(e)}`;

function cliFlags(options: Record<string, unknown>): string {
  const flag: Record<string, string> = { rounds: '--rounds', delta: '--delta', tau: '--tau', nAdversarial: '--n-adv', maxIterations: '--iterations', omega: '--omega', cleanSize: '--clean-size', patience: '--patience', segmentPoints: '--segment-points', cutSlack: '--cut-slack', activeTolerance: '--active-tol' };
  return Object.entries(options)
    .map(([k, v]) => (k === 'alphas' ? `--alphas ${(v as number[]).join(',')}` : k === 'layers' ? `--layers ${Array.isArray(v) ? v.join(',') : String(v)}` : flag[k] ? `${flag[k]} ${String(v)}` : `--${k} ${String(v)}`))
    .join(' ');
}

/** The settings of one study correction (`advcorrect correct` with these options, draw d at --adv-offset 1000·d, no test evaluation). */
function studySettings(model: string, options: Record<string, unknown>, draw: number, out: string, evalN: number): CorrectionRunSettings {
  const spec = MODELS[model]!;
  return {
    model: path.join(sharedModels, spec.file),
    arch: spec.arch,
    dataset: 'mnist',
    out,
    options: resolveCorrectionOptions(options as CorrectionOptionsInput),
    advCandidates: 1000,
    advOffset: 1000 * draw,
    advLabels: 'true',
    clip: true,
    evalN,
    pgdN: 0,
    evalEps: 0.1,
    pgdSteps: 40,
    pgdStepSize: 0.01,
    sweep: [],
    evaluateModels: false,
  };
}

/** Runs one correction per draw and records every ω's answer. */
async function runSetting(group: string, model: string, options: Record<string, unknown>, draws: number[], omegas: number[], e: EvalSettings, skipDone: boolean): Promise<void> {
  const spec = MODELS[model];
  if (!spec) throw new RangeError(`model must be one of ${Object.keys(MODELS).join(', ')}`);
  const test = await loadDataset('mnist', 'test');
  const shifts = await loadShifts();
  const skey = `${model}|${evalKey(e)}`;
  // The curves stop where the shift's clean accuracy is below every answer measured (CNN 0.35, CNNLight 0.4).
  const curve = await shiftCurve(sharedModels, model, test, e, model === 'cnn' ? SHIFTS.filter((s) => s <= 0.35) : SHIFTS.filter((s) => s <= 0.4));
  shifts[skey] = curve;
  await fs.writeFile(shiftFile, `${JSON.stringify(shifts, null, 1)}\n`);
  const base = await loadModel(path.join(sharedModels, spec.file), { arch: spec.arch });
  const before = curve.find((c) => c.shift === 0) ?? { shift: 0, ...(await robustness(base, test, e)) };
  base.model.dispose();
  const key = settingKey(model, resolvedOf(options), e);
  for (const draw of draws) {
    if (skipDone) {
      const done = (await loadRecords()).filter((r) => settingKey(r.model, r.resolved, r.eval) === key && r.draw === draw);
      const have = new Set(done.flatMap((r) => r.answers.map((a) => a.omega)));
      if (omegas.every((w) => have.has(w))) continue;
    }
    const out = path.join(os.tmpdir(), 'advcorrect-study', `${model}-${group}-d${draw}`);
    const settings = studySettings(model, options, draw, out, e.evalN);
    const answers: Answer[] = [];
    let correctionMs = 0;
    let correctionCpuMs = 0;
    let cpu0 = process.cpuUsage();
    const io: RunIo = {
      json: false,
      quiet: true,
      resume: false,
      onOutput: async (output) => {
        const cpu = process.cpuUsage(cpu0);
        correctionCpuMs = (cpu.user + cpu.system) / 1000;
        correctionMs = output.result.totalTimeMs;
        const view = new ParameterView(output.model, output.result.parameters.layers);
        const seen = new Map<number, Robustness>();
        for (const omega of omegas) {
          const chosen = chooseAnswer(output.front, omega, output.result.eta).chosen;
          let r = seen.get(chosen.id);
          if (!r) {
            view.write(chosen.w);
            r = await robustness(output.model, test, e);
            seen.set(chosen.id, r);
          }
          const shift = matchShift(curve, r.clean);
          answers.push({ omega, id: chosen.id, t: chosen.segment ? chosen.alpha : 1, violation: chosen.violation, cleanLoss: chosen.cleanLoss, distance: chosen.distance, result: r, shift });
          process.stderr.write(`${group} ${model} d${draw} ω ${omega}: #${chosen.id} clean ${r.clean} worst ${r.worst} (${JSON.stringify(r.attacks)}); matched shift −${shift.shift.toFixed(3)} worst ${shift.worst.toFixed(3)}\n`);
        }
        view.write(output.front.find((p) => p.id === output.result.chosen.id)!.w);
      },
    };
    const started = Date.now();
    cpu0 = process.cpuUsage();
    const doc = await runCorrection(settings, io);
    const record: RunRecord = {
      at: new Date().toISOString(),
      group,
      model,
      options,
      resolved: resolvedOf(options),
      draw,
      eval: e,
      before,
      iterations: doc.iterations.length,
      stop: doc.rounds.map((r) => r.stopReason).join(','),
      correctionMs,
      correctionCpuMs,
      wallMs: Date.now() - started,
      answers,
      command:
        `node dist/bench/results.js run --group ${group} --model ${model} --draws ${draw} --omegas ${omegas.join(',')} --options '${JSON.stringify(options)}' ` +
        `--eval-n ${e.evalN} --pgd-n ${e.pgdN} --attacks ${e.attacks.join(',')}  # = advcorrect correct --model ../shared/models/${spec.file} --arch ${spec.arch}${draw ? ` --adv-offset ${1000 * draw}` : ''} ${cliFlags(options)}`.trimEnd(),
      commit: gitCommit(),
    };
    await fs.appendFile(runsFile, `${JSON.stringify(record)}\n`);
  }
}

// ---- rendering ------------------------------------------------------------------------------------

const f1 = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : '–');

function pickAnswer(r: RunRecord, omega: number): Answer | undefined {
  return r.answers.find((a) => a.omega === omega);
}

/** Latest record per draw of a setting. */
function byDraw(records: RunRecord[]): RunRecord[] {
  const latest = new Map<number, RunRecord>();
  for (const r of records) latest.set(r.draw, r);
  return [...latest.values()].sort((a, b) => a.draw - b.draw);
}

function rowFor(label: string, runs: RunRecord[], omega: number, cols: string[]): string | undefined {
  const answers = runs.map((r) => pickAnswer(r, omega)).filter((a): a is Answer => Boolean(a));
  if (answers.length === 0) return undefined;
  const b = runs[0]!.before;
  const gain = answers.map((a) => a.result.worst - a.shift.worst);
  const g = meanSd(gain);
  const attackCells = cols.map((c) => pctStat(answers.map((a) => a.result.attacks[c] ?? Number.NaN)));
  const cpu = meanSd(runs.filter((r) => r.correctionCpuMs != null).map((r) => r.correctionCpuMs / 1000));
  const wall = meanSd(runs.map((r) => r.correctionMs / 1000));
  return (
    `| ${label} | ${answers.length} | ${pctStat(answers.map((a) => a.result.clean))} (${f1(b.clean)}) | ${pctStat(answers.map((a) => a.result.fgsm))} (${f1(b.fgsm)}) | ` +
    `${attackCells.join(' | ')} | **${pctStat(answers.map((a) => a.result.worst))}** (${f1(b.worst)}) | ${pctStat(answers.map((a) => a.shift.worst))} | ` +
    `${g.mean >= 0 ? '+' : ''}${(100 * g.mean).toFixed(1)}${g.n > 1 ? ` ± ${(100 * g.sd).toFixed(1)}` : ''} | ${cpu.n ? cpu.mean.toFixed(0) : '–'} / ${wall.mean.toFixed(0)} |`
  );
}

function tableHead(first: string, cols: string[]): string[] {
  return [
    `| ${first} | draws | clean (base) | FGSM (base) | ${cols.map((c) => c.toUpperCase()).join(' | ')} | **worst case** (base) | matched shift, worst case | correction − shift (pp) | CPU s / wall s |`,
    `|---|---|---|---|${cols.map(() => '---|').join('')}---|---|---|---|`,
  ];
}

function frontSvg(model: string, runs: RunRecord[], curve: ShiftPoint[] | undefined): string {
  const W = 520;
  const H = 360;
  const m = { l: 56, r: 16, t: 28, b: 44 };
  // The front of the draw that has every ω (the others evaluate only a few ω).
  const full = [...runs].sort((a, b) => b.answers.length - a.answers.length || a.draw - b.draw)[0]!;
  const pts = full.answers.map((a) => ({ w: a.omega, x: a.result.clean, y: a.result.worst }));
  const shift = (curve ?? []).map((c) => ({ s: c.shift, x: c.clean, y: c.worst }));
  const all = [...pts, ...shift];
  const x0 = Math.min(...all.map((p) => p.x)) - 0.002;
  const x1 = Math.max(...all.map((p) => p.x)) + 0.002;
  const y1 = Math.min(1, Math.max(...all.map((p) => p.y)) + 0.05);
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - (y / y1) * (H - m.t - m.b);
  const line = (p: Array<{ x: number; y: number }>) => p.map((q, i) => `${i ? 'L' : 'M'}${px(q.x).toFixed(1)},${py(q.y).toFixed(1)}`).join('');
  const ticks: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const x = x0 + ((x1 - x0) * i) / 4;
    const y = (y1 * i) / 4;
    ticks.push(`<text x="${px(x).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${(100 * x).toFixed(1)}</text>`);
    ticks.push(`<text x="${m.l - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end">${(100 * y).toFixed(0)}</text>`);
    ticks.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#e3e6ea"/>`);
  }
  return [
    `<g data-model="${model}">`,
    ...ticks,
    `<text x="${(W / 2).toFixed(0)}" y="16" text-anchor="middle" font-weight="bold">${model}: clean against worst-case robust accuracy (%)</text>`,
    `<text x="${(W / 2).toFixed(0)}" y="${H - 8}" text-anchor="middle">clean accuracy (%)</text>`,
    `<path d="${line(shift)}" fill="none" stroke="#8a8f98" stroke-dasharray="4 3"/>`,
    ...shift.map((p) => `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="#8a8f98" data-shift="${p.s}" data-clean="${p.x}" data-worst="${p.y}"><title>shift −${p.s}</title></circle>`),
    `<path d="${line(pts)}" fill="none" stroke="#1f6fd1" stroke-width="2"/>`,
    ...pts.map((p) => `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="4.5" fill="#1f6fd1" data-omega="${p.w}" data-clean="${p.x}" data-worst="${p.y}"><title>ω ${p.w}</title></circle><text x="${(px(p.x) + 6).toFixed(1)}" y="${(py(p.y) - 6).toFixed(1)}" fill="#1f6fd1">ω ${p.w}</text>`),
    `<text x="${W - m.r - 4}" y="${H - m.b - 8}" text-anchor="end" fill="#8a8f98">blue: ω front of draw ${full.draw}; grey dashed: conv1 bias shift 0–${shift.length ? shift[shift.length - 1]!.s : ''}</text>`,
    `</g>`,
  ].join('\n');
}

async function render(): Promise<void> {
  const records = await loadRecords();
  const shifts = await loadShifts();
  const previous = existsSync(resultsFile) ? await fs.readFile(resultsFile, 'utf8') : '';
  const marker = previous.indexOf('<!-- analysis -->');
  const analysis = marker >= 0 ? previous.slice(marker) : '<!-- analysis -->\n';
  const D = DEFAULT_CORRECTION_OPTIONS;
  const lines: string[] = [];
  lines.push('# Results: adversary correction on the authors\u2019 MNIST models');
  lines.push('');
  lines.push('Generated by `npm run build:ts && node dist/bench/results.js study && node dist/bench/results.js headline --model cnn` (bench/results.ts; add `--shared DIR` when the authors\u2019 models are not in ../shared), from the records in');
  lines.push('`docs/results-runs.jsonl` (one line per correction run, with its command and commit) and `docs/results-shift.json`; the analysis');
  lines.push('below the tables is written by hand.');
  lines.push(`Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, shared with up to ~9 other jobs while these ran: wall times are inflated several-fold, so the CPU seconds of the correction loop are given beside them.`);
  lines.push('');
  lines.push('**Yardstick.** Clean and FGSM ε 0.1 on the first `eval-n` MNIST test images; the **worst case** (an image counts only if it is classified correctly clean, under FGSM and under every strong attack) on the first `pgd-n`, strong attacks named per table (PGD = PGD-40, step 0.01, random start; APGD-CE = 100 iterations, Croce & Hein 2020). True labels, ε 0.1, clipped to [0, 1].');
  lines.push('**Baseline.** The conv1 bias shift (one constant subtracted from every conv1 bias) *matched in clean accuracy*: the shift curve (steps of 0.05, to 0.4 for CNNLight and 0.35 for the CNN; same images and attacks) interpolated linearly at the correction\u2019s clean accuracy. PGD fine-tuning matched in time is not in these tables (one draw per model was run by hand: see the analysis).');
  lines.push(`**X̃.** PGD ε 0.1, 40 × 0.01, random start, class-balanced, most violated first, from 1,000 training images after the 2,000-image clean subset of a seeded permutation (seed 1); draw d uses \`--adv-offset\` 1000·d. Defaults of the commit that ran each row (docs/correction.md): δ ${D.delta}, τ ${D.tau}, R ${D.rounds}, |X̃| ${D.nAdversarial} per round, ω ${D.omega}, M ${D.maxIterations}.`);
  lines.push('Each row\u2019s ω answers come from one run per draw: ω acts only on the final front (docs/correction.md, "The answer and ω"), so one run gives the answer of every ω.');
  lines.push('');
  const groups = new Map<string, RunRecord[]>();
  for (const r of records) {
    const k = settingKey(r.model, r.resolved, r.eval);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const setting = (model: string, options: Record<string, unknown>, e: EvalSettings) => byDraw(groups.get(settingKey(model, resolvedOf(options), e)) ?? []);
  const evals = [...new Set(records.map((r) => JSON.stringify(r.eval)))].map((s) => JSON.parse(s) as EvalSettings);
  const studyEval = evals.find((e) => records.some((r) => r.group === 'front' && evalKey(r.eval) === evalKey(e))) ?? evals[evals.length - 1];
  const svgs: string[] = [];
  if (studyEval) {
    const cols = studyEval.attacks;
    lines.push(`Study tables: clean/FGSM on ${studyEval.evalN}, worst case of FGSM + ${cols.join(' + ')} on ${studyEval.pgdN} test images; mean ± sample sd over draws.`);
    lines.push('');
    for (const model of Object.keys(MODELS)) {
      const front = setting(model, {}, studyEval);
      if (front.length === 0) continue;
      lines.push(`## ${model}: the ω front (defaults)`);
      lines.push('');
      lines.push(...tableHead('ω', cols));
      for (const w of OMEGAS) {
        const row = rowFor(`${w}${w === D.omega ? ' (default)' : ''}`, front, w, cols);
        if (row) lines.push(row);
      }
      lines.push('');
      svgs.push(frontSvg(model, front, shifts[`${model}|${evalKey(studyEval)}`]));
      const rounds = [1, 2, 3].map((R) => rowFor(`${R}`, setting(model, R === D.rounds ? {} : { rounds: R }, studyEval), D.omega, cols)).filter((r): r is string => Boolean(r));
      if (rounds.length > 1) {
        lines.push(`## ${model}: robustness against rounds R (ω ${D.omega})`);
        lines.push('');
        lines.push(...tableHead('R', cols), ...rounds);
        lines.push('');
      }
      const sizes = [10, 20, 50, 100].map((n) => rowFor(`${n}`, setting(model, n === D.nAdversarial ? {} : { nAdversarial: n }, studyEval), D.omega, cols)).filter((r): r is string => Boolean(r));
      if (sizes.length > 1) {
        lines.push(`## ${model}: robustness against |X̃| per round (ω ${D.omega})`);
        lines.push('');
        lines.push(...tableHead('\\|X̃\\|', cols), ...sizes);
        lines.push('');
      }
    }
    if (svgs.length) {
      const H = 360;
      await fs.writeFile(
        svgFile,
        `<svg xmlns="http://www.w3.org/2000/svg" width="520" height="${H * svgs.length}" font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n${svgs
          .map((g, i) => `<g transform="translate(0 ${i * H})">\n${g}\n</g>`)
          .join('\n')}\n</svg>\n`,
      );
      lines.push('![ω front against the matched bias shift](results-front.svg)');
      lines.push('');
      lines.push('*The ω front (blue, the draw with every ω evaluated) against the conv1 bias shift curve (grey) in clean against worst-case robust accuracy; written by `node dist/bench/results.js render`.*');
      lines.push('');
    }
  }
  const heads = existsSync(headlineFile) ? (JSON.parse(await fs.readFile(headlineFile, 'utf8')) as Headline[]) : [];
  const headSettings = [...new Set(heads.map((h) => `${h.model}|${h.setting ?? 'defaults'}`))];
  for (const key of headSettings) {
    const [model, setting] = key.split('|') as [string, string];
    const hs = heads.filter((h) => h.model === model && (h.setting ?? 'defaults') === setting).sort((a, b) => a.draw - b.draw);
    if (hs.length === 0) continue;
    const gain = meanSd(hs.map((h) => h.after.fgsm - h.before.fgsm));
    const drop = meanSd(hs.map((h) => h.after.clean - h.before.clean));
    lines.push(`## ${model}: the paper's headline on the full test set (${setting === 'defaults' ? 'defaults' : `options ${setting}`}, ω ${hs.map((h) => h.omega).filter((v, i, a) => a.indexOf(v) === i).join(', ')})`);
    lines.push('');
    lines.push('| draw | clean before → after (pp) | FGSM ε 0.1 before → after (gain pp) | command |');
    lines.push('|---|---|---|---|');
    for (const h of hs) {
      lines.push(`| ${h.draw} | ${f1(h.before.clean)} → ${f1(h.after.clean)} (${(100 * (h.after.clean - h.before.clean)).toFixed(2)}) | ${f1(h.before.fgsm)} → ${f1(h.after.fgsm)} (+${(100 * (h.after.fgsm - h.before.fgsm)).toFixed(1)}) | \`${h.command}\` |`);
    }
    lines.push('');
    lines.push(`Mean over ${hs.length} draws (n = ${hs[0]!.n}): FGSM gain **${(100 * gain.mean).toFixed(1)}${gain.n > 1 ? ` ± ${(100 * gain.sd).toFixed(1)}` : ''} pp**, clean change **${(100 * drop.mean).toFixed(2)}${drop.n > 1 ? ` ± ${(100 * drop.sd).toFixed(2)}` : ''} pp** (target: gain ≥ 40 pp with a drop ≤ 1 pp).`);
    lines.push('');
  }
  lines.push('## Every run (search and study, negative ones included)');
  lines.push('');
  lines.push('One line per correction run, in the order run; ω answers as "ω: clean / worst case (matched shift worst case)" in %. The full command of each is in docs/results-runs.jsonl.');
  lines.push('');
  lines.push('| # | group | model | options | draw | eval (clean n / strong n / attacks) | stop | CPU s / wall s | answers |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  records.forEach((r, i) => {
    const ans = r.answers.map((a) => `${a.omega}: ${f1(a.result.clean)} / ${f1(a.result.worst)} (${f1(a.shift.worst)})`).join('; ');
    lines.push(`| ${i + 1} | ${r.group} | ${r.model} | \`${JSON.stringify(r.options)}\` | ${r.draw} | ${r.eval.evalN} / ${r.eval.pgdN} / ${r.eval.attacks.join('+')} | ${r.stop} | ${r.correctionCpuMs == null ? '–' : (r.correctionCpuMs / 1000).toFixed(0)} / ${(r.correctionMs / 1000).toFixed(0)} | ${ans} |`);
  });
  lines.push('');
  await fs.writeFile(resultsFile, `${lines.join('\n')}\n${analysis}`);
}

async function study(): Promise<void> {
  const models = arg('models', 'cnnlight,cnn').split(',');
  const draws = arg('draws', '0,1,2,3').split(',').map(Number);
  const only = new Set(arg('only', 'front,rounds,sizes').split(','));
  const e = evalSettings();
  const D = DEFAULT_CORRECTION_OPTIONS;
  for (const model of models) {
    // The whole ω front on the first draw, the default ω (and ω 1) on the others (each evaluation costs minutes on a shared machine).
    if (only.has('front')) {
      await runSetting('front', model, {}, draws.slice(0, 1), OMEGAS, e, true);
      await runSetting('front', model, {}, draws.slice(1), [...new Set([D.omega, 1])], e, true);
    }
    if (only.has('rounds')) for (const R of [1, 2, 3]) if (R !== D.rounds) await runSetting('rounds', model, { rounds: R }, draws, [D.omega], e, true);
    if (only.has('sizes')) for (const n of [10, 20, 50, 100]) if (n !== D.nAdversarial) await runSetting('sizes', model, { nAdversarial: n }, draws, [D.omega], e, true);
    await render();
  }
}

const headlineFile = path.join(packageRoot, 'docs', 'results-headline.json');

interface Headline {
  model: string;
  /** The options over the defaults ('defaults' for none), as given to --options. */
  setting?: string;
  draw: number;
  omega: number;
  n: number;
  before: { clean: number; fgsm: number };
  after: { clean: number; fgsm: number };
  command: string;
}

/**
 * The paper's headline on the full test set: clean and FGSM ε 0.1 on all 10,000 test images of the
 * models the study's front runs saved (the answer at the default ω, the model `advcorrect correct` writes).
 */
async function headline(): Promise<void> {
  const model = arg('model', 'cnn');
  const spec = MODELS[model]!;
  const draws = arg('draws', '0,1,2,3').split(',').map(Number);
  const test = await loadDataset('mnist', 'test');
  const fgsmFull = async (m: Parameters<typeof evaluate>[0]) => {
    const r = await evaluate(m, test, { attacks: [{ name: 'fgsm', eps: 0.1 }], seed: 1 });
    return { clean: r.clean.accuracy, fgsm: r.attacks[0]!.accuracy };
  };
  const base = await loadModel(path.join(sharedModels, spec.file), { arch: spec.arch });
  const before = await fgsmFull(base);
  base.model.dispose();
  const rows: Headline[] = existsSync(headlineFile) ? (JSON.parse(await fs.readFile(headlineFile, 'utf8')) as Headline[]) : [];
  // --options JSON: correct with those options over the defaults first (the default setting reuses the study's front runs).
  const optionsText = arg('options', '');
  const options = optionsText ? (JSON.parse(optionsText) as Record<string, unknown>) : undefined;
  const setting = options ? JSON.stringify(options) : 'defaults';
  for (const draw of draws) {
    const dir = path.join(os.tmpdir(), 'advcorrect-study', options ? `${model}-headline-${Buffer.from(setting).toString('hex').slice(0, 24)}-d${draw}` : `${model}-front-d${draw}`);
    if (options) {
      await runCorrection(studySettings(model, options, draw, dir, 10000), { quiet: true, resume: false });
    }
    const settings = JSON.parse(await fs.readFile(path.join(dir, 'run.json'), 'utf8')) as CorrectionRunSettings;
    const corrected = await loadModel(path.join(dir, 'model', 'model.json'));
    const after = await fgsmFull(corrected);
    corrected.model.dispose();
    const row: Headline = {
      model,
      setting,
      draw,
      omega: settings.options.omega,
      n: test.count,
      before,
      after,
      command: `advcorrect correct --model ../shared/models/${spec.file} --arch ${spec.arch}${draw ? ` --adv-offset ${1000 * draw}` : ''}${options ? ` ${cliFlags(options)}` : ''} --eval-n 10000 --pgd-n 0 --out DIR  (then: node dist/bench/results.js headline --model ${model} --draws ${draw}${options ? ` --options '${setting}'` : ''})`,
    };
    process.stderr.write(`headline ${JSON.stringify(row)}\n`);
    const kept = rows.filter((r) => !(r.model === model && (r.setting ?? 'defaults') === setting && r.draw === draw));
    kept.push(row);
    rows.splice(0, rows.length, ...kept);
    await fs.writeFile(headlineFile, `${JSON.stringify(rows, null, 1)}\n`);
  }
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'study';
  if (mode === 'render') return render();
  if (!existsSync(sharedModels)) {
    process.stderr.write(`results: ${sharedModels} is absent; the authors' models are needed (--shared DIR)\n`);
    process.exitCode = 1;
    return;
  }
  await initBackend();
  if (mode === 'study') return study();
  if (mode === 'headline') {
    await headline();
    return render();
  }
  if (mode === 'run') {
    const draws = arg('draws', '0').split(',').map(Number);
    const omegas = arg('omegas', OMEGAS.join(',')).split(',').map(Number);
    await runSetting(arg('group', 'search'), arg('model', 'cnnlight'), JSON.parse(arg('options', '{}')) as Record<string, unknown>, draws, omegas, evalSettings(), false);
    return render();
  }
  throw new RangeError(`unknown mode '${mode}' (study, run, render)`);
}

main().catch((error: unknown) => {
  process.stderr.write(`results: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 1;
});
