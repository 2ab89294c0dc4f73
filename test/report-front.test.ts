import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../lib/backend/index.js';
import { resolveCorrectionOptions } from '../lib/correction/options.js';
import { chooseAnswer } from '../lib/correction/selection.js';
import type { CandidateRecord } from '../lib/correction/types.js';
import { saveModel } from '../lib/models/io.js';
import { OMEGA_GRID, omegaDependentSteps, renderReport, reportOmegas, type ResultDocument } from '../lib/report/index.js';
import { runCorrection, type CorrectionRunSettings } from '../lib/runs/correction.js';
import { trainTinyMnistModel } from './helpers/tiny-mnist.js';

/** The attributes of every match of `selector` in `html`. */
function attrsOf(html: string, selector: RegExp): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of html.matchAll(selector)) {
    const attrs: Record<string, string> = {};
    for (const a of m[0].matchAll(/([a-zA-Z-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    out.push(attrs);
  }
  return out;
}

function captionOf(page: string): string {
  const start = page.indexOf('<p class="caption">');
  assert.ok(start >= 0, 'the ω front has a caption');
  return page.slice(start, page.indexOf('</p>', start));
}

function candidate(round: number, iteration: number, feasible: boolean, extra: Partial<CandidateRecord> = {}): CandidateRecord {
  return { id: 0, round, iteration, alpha: 1, violation: 1, misclassified: 0, cleanLoss: 0.1, distance: 1, feasible, ...extra };
}

describe('report: the ω front of report.html on a real correction', function () {
  this.timeout(120_000);
  let dir: string;
  let result: ResultDocument;
  let html: string;
  let svg: string;
  let runSettings: CorrectionRunSettings;
  // One step size: each line search has a single candidate, so ω picks nothing but the answer and a
  // rerun with another ω follows the same path (τ 0.2 leaves the quarter steps room under η).
  const OPTIONS = { nAdversarial: 10, rounds: 1, maxIterations: 10, cleanSize: 500, delta: 1, alphas: [0.25], tau: 0.2, omega: 0.5 };

  before(async function () {
    await initBackend();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-front-'));
    const model = await trainTinyMnistModel(32, [11, 12]);
    await saveModel(model, path.join(dir, 'input'));
    model.dispose();
    const settings: CorrectionRunSettings = {
      model: path.join(dir, 'input'),
      dataset: 'mnist',
      out: path.join(dir, 'run'),
      options: resolveCorrectionOptions(OPTIONS),
      advCandidates: 300,
      advOffset: 0,
      advLabels: 'true',
      clip: true,
      evalN: 0,
      pgdN: 0,
      evalEps: 0.1,
      pgdSteps: 40,
      pgdStepSize: 0.01,
      sweep: [],
      evaluateModels: false,
    };
    runSettings = settings;
    await runCorrection(settings, { quiet: true, resume: false });
    // What a user has: the two files the run left.
    result = JSON.parse(await fs.readFile(path.join(dir, 'run', 'result.json'), 'utf8')) as ResultDocument;
    html = await fs.readFile(path.join(dir, 'run', 'report.html'), 'utf8');
    const start = html.indexOf('<svg id="omega-front"');
    assert.ok(start >= 0, 'report.html holds the ω front');
    svg = html.slice(start, html.indexOf('</svg>', start));
  });

  after(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('plots every member of the recorded front, with its numbers, and nothing else', () => {
    assert.ok(result.pool.length >= 2, `a front to choose from (${result.pool.length} points)`);
    const points = attrsOf(svg, /<circle class="front-point[^"]*"[^>]*>/g);
    assert.equal(points.length, result.pool.length);
    for (const p of result.pool) {
      const c = points.find((x) => x['data-id'] === String(p.id));
      assert.ok(c, `front member #${p.id} plotted`);
      assert.equal(Number(c['data-violation']), p.violation);
      assert.equal(Number(c['data-loss']), p.cleanLoss);
      assert.equal(c.class!.includes('ineligible'), p.cleanLoss > result.eta);
      assert.equal(c.class!.includes('segment'), p.segment === true);
    }
    assert.equal(Number(attrsOf(svg, /<line [^>]*class="eta"[^>]*>/g)[0]!['data-eta']), result.eta);
  });

  it('rings the chosen answer, the point chooseAnswer gives for the run’s own ω', () => {
    const answer = attrsOf(svg, /<circle class="answer"[^>]*>/g);
    assert.equal(answer.length, 1);
    assert.equal(Number(answer[0]!['data-id']), result.chosen.id);
    assert.equal(Number(answer[0]!['data-violation']), result.chosen.violation);
    assert.equal(Number(answer[0]!['data-loss']), result.chosen.cleanLoss);
    assert.equal(chooseAnswer(result.pool, result.options.omega, result.eta).chosen.id, result.chosen.id);
    const marked = attrsOf(svg, /<g class="omega-mark is-answer"[^>]*>/g);
    assert.equal(marked.length, 1);
    assert.equal(Number(marked[0]!['data-id']), result.chosen.id);
    assert.ok(marked[0]!['data-omegas']!.split(',').map(Number).includes(result.options.omega));
  });

  it('marks for each ω of the grid the point chooseAnswer picks, in the plot and in the table', () => {
    const marks = attrsOf(svg, /<g class="omega-mark[^"]*"[^>]*>/g);
    const rows = attrsOf(html, /<tr class="omega-row[^"]*"[^>]*>/g);
    assert.deepEqual(rows.map((r) => Number(r['data-omega'])), reportOmegas(result));
    for (const omega of OMEGA_GRID) {
      const expected = chooseAnswer(result.pool, omega, result.eta).chosen;
      const withOmega = marks.filter((m) => m['data-omegas']!.split(',').map(Number).includes(omega));
      assert.equal(withOmega.length, 1, `ω ${omega} labelled once`);
      assert.equal(Number(withOmega[0]!['data-id']), expected.id, `ω ${omega}`);
      assert.equal(Number(rows.find((r) => Number(r['data-omega']) === omega)!['data-id']), expected.id);
    }
    // Independently of chooseAnswer: ω = 1 is the least violation and ω = 0 the least clean loss among
    // the eligible points, and the picks move monotonically along the front.
    const eligible = result.pool.filter((p) => p.cleanLoss <= result.eta);
    const pick = (omega: number) => result.pool.find((p) => String(p.id) === marks.find((m) => m['data-omegas']!.split(',').map(Number).includes(omega))!['data-id'])!;
    assert.equal(pick(1).violation, Math.min(...eligible.map((p) => p.violation)));
    assert.equal(pick(0).cleanLoss, Math.min(...eligible.map((p) => p.cleanLoss)));
    for (let i = 1; i < OMEGA_GRID.length; i++) {
      assert.ok(pick(OMEGA_GRID[i]!).violation <= pick(OMEGA_GRID[i - 1]!).violation);
      assert.ok(pick(OMEGA_GRID[i]!).cleanLoss >= pick(OMEGA_GRID[i - 1]!).cleanLoss);
    }
  });

  it('says in the caption how ω picks and, as no line search gave ω a choice, that a rerun reproduces a mark', () => {
    assert.equal(omegaDependentSteps(result), 0);
    const caption = captionOf(html);
    assert.match(caption, new RegExp(`final front the answer was chosen from \\(${result.pool.length} points`));
    assert.match(caption, /ω·Ṽ \+ \(1 − ω\)·L̃/);
    assert.match(caption, /rerunning the same command with <code>--omega 0\.2<\/code> \(say\) returns the point marked ω 0\.2/);
  });

  it('a rerun of the same correction with ω = 0 ends on the point marked ω 0', async () => {
    const marked = chooseAnswer(result.pool, 0, result.eta).chosen;
    assert.notEqual(marked.id, result.chosen.id, 'ω 0 marks another point than the run’s answer (ω 0.5)');
    const rerun = await runCorrection(
      { ...runSettings, out: path.join(dir, 'rerun'), options: resolveCorrectionOptions({ ...OPTIONS, omega: 0 }) },
      { quiet: true, resume: false },
    );
    assert.equal(rerun.chosen.violation, marked.violation);
    assert.equal(rerun.chosen.cleanLoss, marked.cleanLoss);
    assert.equal(rerun.chosen.id, marked.id);
  });

  it('warns that a rerun may differ once a line search had a trade-off between feasible candidates', () => {
    const round = result.rounds.at(-1)!.round;
    const traded: ResultDocument = {
      ...result,
      candidates: [
        ...result.candidates,
        { id: 9001, round, iteration: 99, alpha: 0.5, violation: 1, misclassified: 1, cleanLoss: result.eta * 0.99, distance: 1, feasible: true },
        { id: 9002, round, iteration: 99, alpha: 1, violation: 0, misclassified: 0, cleanLoss: result.eta, distance: 2, feasible: true },
      ],
    };
    assert.equal(omegaDependentSteps(traded), 1);
    assert.match(captionOf(renderReport(traded)), /In 1 of this run's \d+ line searches .* can therefore take a different path/);
  });
});

describe('report: line searches where ω also chose the iterate', () => {
  it('counts the line searches with two or more loss-feasible candidates and none best in both criteria', () => {
    const candidates = [
      candidate(0, 0, true),
      // one feasible candidate: ω has no choice
      candidate(1, 1, true),
      candidate(1, 1, false),
      // two feasible candidates with equal criteria: the tie-break after V decides, counted
      candidate(1, 2, true),
      candidate(1, 2, true),
      // one candidate has less violation and no more loss than the other: every ω takes it
      candidate(1, 3, true, { violation: 0.5, cleanLoss: 0.1 }),
      candidate(1, 3, true, { violation: 1, cleanLoss: 0.1 }),
      // a trade-off between V and L: ω decides, counted
      candidate(1, 4, true, { violation: 0.5, cleanLoss: 0.3 }),
      candidate(1, 4, true, { violation: 1, cleanLoss: 0.2 }),
      candidate(1, 4, false, { violation: 0, cleanLoss: 0.5 }),
      // round starts and segment points are no line searches
      candidate(2, 0, true),
      candidate(2, 0, true),
      candidate(2, 1, false),
      candidate(2, 1, false),
      candidate(2, 3, true, { segment: true, violation: 0.5, cleanLoss: 0.3 }),
      candidate(2, 3, true, { segment: true, violation: 1, cleanLoss: 0.2 }),
    ];
    assert.equal(omegaDependentSteps({ candidates }), 2);
    assert.equal(omegaDependentSteps({ candidates: candidates.slice(0, 3) }), 0);
    assert.equal(omegaDependentSteps({ candidates: candidates.slice(5, 7) }), 0);
  });

  it('the report ω list is the grid plus the run’s own ω, ascending and without repeats', () => {
    assert.deepEqual(reportOmegas({ options: resolveCorrectionOptions({ omega: 0.5 }) }), [0, 0.2, 0.4, 0.5, 0.6, 0.8, 1]);
    assert.deepEqual(reportOmegas({ options: resolveCorrectionOptions({ omega: 0.4 }) }), [...OMEGA_GRID]);
  });
});
