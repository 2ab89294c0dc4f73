import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveCorrectionOptions } from '../lib/correction/options.js';
import { paretoFilter } from '../lib/correction/selection.js';
import type { CandidateRecord, IterationLog } from '../lib/correction/types.js';
import { decodePng } from '../lib/data/png.js';
import { encodePng, renderReport, ticks, writeReport, writeResult, quantiseImages, type ResultDocument } from '../lib/report/index.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A structurally complete result document with seeded random numbers (no run needed). */
export function syntheticResult(seed = 1, nCandidates = 25, nExamples = 12): ResultDocument {
  const rand = lcg(seed);
  const eta = 0.08;
  const candidates: CandidateRecord[] = [{ id: 0, round: 0, iteration: 0, alpha: 0, violation: 30, misclassified: 10, cleanLoss: 0.07, distance: 0, feasible: true }];
  for (let id = 1; id < nCandidates; id++) {
    const cleanLoss = 0.07 + rand() * 0.03;
    candidates.push({
      id,
      round: 1,
      iteration: Math.ceil(id / 4),
      alpha: [0.25, 0.5, 0.75, 1][id % 4]!,
      violation: rand() * 30 * (1 - id / nCandidates),
      misclassified: Math.floor(rand() * 10),
      cleanLoss,
      distance: rand() * 2,
      feasible: cleanLoss <= eta,
    });
  }
  const pool = paretoFilter(candidates);
  const chosen = pool.filter((p) => p.feasible).reduce((a, b) => (b.violation < a.violation ? b : a));
  const iterations: IterationLog[] = Array.from({ length: 6 }, (_, i) => ({
    round: 1,
    iteration: i + 1,
    cutsAdded: 11,
    cutsTotal: 11 * (i + 1),
    cutsRemoved: 0,
    qpStatus: 'solved',
    qpIterations: 5 + i,
    qpTimeMs: 10 * rand(),
    qpObjective: rand(),
    alpha: 0.5,
    violation: 30 / (i + 2),
    misclassified: 10 - i,
    cleanLoss: 0.07 + 0.001 * i,
    distance: 0.2 * i,
    feasible: true,
    timeMs: 100,
  }));
  const size = 28 * 28;
  const images = new Float32Array(nExamples * size).map(() => rand());
  const pixels = quantiseImages(images, nExamples, size);
  return {
    format: 'advcorrect-result',
    formatVersion: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    settings: { model: 'synthetic <model> & "quotes"', arch: 'cnnlight', dataset: 'mnist' },
    backend: 'cpu',
    evaluation: { split: 'test', n: 10000, pgdN: 2000, clip: true, labels: 'true' },
    parameters: { count: 41008, layers: ['conv1', 'conv2', 'fc1', 'output'] },
    options: resolveCorrectionOptions(),
    eta,
    cleanLossBefore: 0.07,
    cleanLossAfter: chosen.cleanLoss,
    adversarial: {
      count: nExamples,
      correctBefore: 0,
      correctAfter: nExamples - 1,
      violationBefore: 30,
      violationAfter: chosen.violation,
      labels: Array.from({ length: nExamples }, (_, i) => i % 10),
      predictionsBefore: Array.from({ length: nExamples }, (_, i) => (i + 1) % 10),
      predictionsAfter: Array.from({ length: nExamples }, (_, i) => (i === 3 ? 7 : i % 10)),
      rounds: Array.from({ length: nExamples }, () => 1),
    },
    iterations,
    rounds: [{ round: 1, adversarialCount: nExamples, iterations: 6, stopReason: 'converged', correctedBefore: 0, correctedAfter: nExamples - 1 }],
    pool,
    candidates,
    chosen,
    distance: chosen.distance,
    relativeDistance: chosen.distance / 10,
    infeasible: [],
    totalQpTimeMs: 1234,
    totalTimeMs: 56789,
    resumed: false,
    before: { clean: { accuracy: 0.981 }, fgsm: { eps: 0.1, accuracy: 0.21 }, pgd: { eps: 0.1, steps: 40, accuracy: 0.06 } },
    after: { clean: { accuracy: 0.972 }, fgsm: { eps: 0.1, accuracy: 0.61 }, pgd: { eps: 0.1, steps: 40, accuracy: 0.33 } },
    sweep: {
      attack: 'fgsm',
      points: [0.05, 0.1, 0.15, 0.2].map((eps) => ({ eps, before: Math.max(0, 0.9 - eps * 6), after: Math.max(0, 0.95 - eps * 3) })),
    },
    examples: {
      height: 28,
      width: 28,
      channels: 1,
      items: pixels.map((p, i) => ({ label: i % 10, before: (i + 1) % 10, after: i === 3 ? 7 : i % 10, round: 1, pixels: p })),
    },
    outputs: { model: 'model/model.json', report: 'report.html' },
  };
}

const VOID = new Set(['meta', 'link', 'br', 'hr', 'img', 'input', 'area', 'base', 'col', 'embed', 'source', 'track', 'wbr']);

/** A strict-enough HTML checker: doctype, balanced and properly nested tags, quoted attributes. */
function checkHtml(html: string): void {
  assert.ok(html.startsWith('<!DOCTYPE html>'), 'doctype first');
  const stack: string[] = [];
  const tagRe = /<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:="[^"]*")?)*)\s*(\/?)>|<!DOCTYPE html>|<!--[\s\S]*?-->/g;
  let last = 0;
  for (let m = tagRe.exec(html); m; m = tagRe.exec(html)) {
    const between = html.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray angle bracket near ${JSON.stringify(html.slice(Math.max(0, m.index - 60), m.index))}`);
    last = tagRe.lastIndex;
    if (!m[2]) continue;
    const name = m[2].toLowerCase();
    const closing = m[1] === '/';
    const selfClosing = m[4] === '/';
    if (closing) {
      const open = stack.pop();
      assert.equal(open, name, `</${name}> closes <${open}>`);
    } else if (!selfClosing && !VOID.has(name)) stack.push(name);
  }
  assert.ok(!/[<>]/.test(html.slice(last)), 'trailing stray bracket');
  assert.deepEqual(stack, [], 'all tags closed');
}

function attrsOf(html: string, selector: RegExp): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of html.matchAll(selector)) {
    const attrs: Record<string, string> = {};
    for (const a of m[0].matchAll(/([a-zA-Z-]+)="([^"]*)"/g)) attrs[a[1]!] = a[2]!;
    out.push(attrs);
  }
  return out;
}

describe('report: report.html', () => {
  const result = syntheticResult();
  const html = renderReport(result);

  it('is well-formed HTML with a doctype, a title and balanced tags', () => {
    checkHtml(html);
    assert.match(html, /<title>advcorrect report — synthetic &lt;model&gt; &amp; &quot;quotes&quot;<\/title>/);
  });

  it('is self-contained: no URL with a scheme other than data:, no scripts, no external resources', () => {
    assert.doesNotMatch(html, /https?:\/\//i);
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<link/i);
    for (const m of html.matchAll(/\b(?:href|src)="([^"]*)"/g)) assert.ok(m[1]!.startsWith('data:'), `external reference ${m[1]}`);
    assert.doesNotMatch(html, /url\(/);
  });

  it('the Pareto plot holds every candidate, each pool member and the chosen point with result.json numbers', () => {
    const svg = html.slice(html.indexOf('<svg id="pareto"'), html.indexOf('</svg>', html.indexOf('<svg id="pareto"')));
    const circles = attrsOf(svg, /<circle [^>]*>/g);
    const byClass = (cls: string) => circles.filter((c) => c.class!.split(' ').includes(cls));
    const poolIds = new Set(result.pool.map((p) => p.id));
    assert.equal(byClass('pool').length, result.pool.length);
    assert.equal(byClass('candidate').length, result.candidates.filter((c) => !poolIds.has(c.id)).length);
    for (const c of result.candidates) {
      const circle = circles.find((x) => x['data-id'] === String(c.id) && x.class !== 'chosen');
      assert.ok(circle, `candidate ${c.id} plotted`);
      assert.equal(Number(circle['data-violation']), c.violation);
      assert.equal(Number(circle['data-loss']), c.cleanLoss);
    }
    const chosen = byClass('chosen');
    assert.equal(chosen.length, 1);
    assert.equal(Number(chosen[0]!['data-violation']), result.chosen.violation);
    assert.equal(Number(chosen[0]!['data-loss']), result.chosen.cleanLoss);
    assert.equal(Number(attrsOf(svg, /<line [^>]*class="eta"[^>]*>/g)[0]!['data-eta']), result.eta);
    // Plot geometry: a smaller clean loss is further left, a smaller violation lower (larger y).
    const sorted = [...result.pool].sort((a, b) => a.cleanLoss - b.cleanLoss);
    const cx = (id: number) => Number(circles.find((x) => x['data-id'] === String(id))!.cx);
    const cy = (id: number) => Number(circles.find((x) => x['data-id'] === String(id))!.cy);
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(cx(sorted[i]!.id) >= cx(sorted[i - 1]!.id));
      assert.ok(cy(sorted[i]!.id) >= cy(sorted[i - 1]!.id), 'along the front, more loss means less violation');
    }
  });

  it('the robustness plot holds the sweep and the headline FGSM/PGD accuracies before and after', () => {
    for (const key of ['before', 'after'] as const) {
      const dots = attrsOf(html, new RegExp(`<circle class="sweep-${key}"[^>]*>`, 'g'));
      assert.deepEqual(dots.map((d) => [Number(d['data-eps']), Number(d['data-accuracy'])]), result.sweep!.points.map((p) => [p.eps, p[key]]));
      const fgsm = attrsOf(html, new RegExp(`<rect class="fgsm-${key}"[^>]*>`, 'g'));
      assert.equal(Number(fgsm[0]!['data-accuracy']), result[key].fgsm.accuracy);
      const pgd = attrsOf(html, new RegExp(`<path class="pgd-${key}"[^>]*>`, 'g'));
      assert.equal(Number(pgd[0]!['data-accuracy']), result[key].pgd.accuracy);
    }
    assert.match(html, /98\.1%/);
    assert.match(html, /61\.0%/);
    assert.match(html, /\+40\.0 pp/);
  });

  it('the convergence plots hold every iteration', () => {
    const v = attrsOf(html, /<circle class="dot-after"[^>]*data-violation="[^"]*"[^>]*>/g);
    assert.deepEqual(v.map((d) => Number(d['data-violation'])), result.iterations.map((r) => r.violation));
    const l = attrsOf(html, /<circle class="dot-after"[^>]*data-loss="[^"]*"[^>]*>/g);
    assert.deepEqual(l.map((d) => Number(d['data-loss'])), result.iterations.map((r) => r.cleanLoss));
  });

  it('the example pictures decode to the pixels of result.json, with labels and predictions', () => {
    const groups = attrsOf(html, /<g class="example[^"]*"[^>]*>/g);
    assert.equal(groups.length, result.examples!.items.length);
    const images = [...html.matchAll(/href="data:image\/png;base64,([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(images.length, result.examples!.items.length);
    result.examples!.items.forEach((item, i) => {
      const png = decodePng(Buffer.from(images[i]!, 'base64'));
      assert.equal(png.width, 28);
      assert.equal(png.channels, 1);
      assert.deepEqual([...png.data], item.pixels);
      assert.equal(Number(groups[i]!['data-label']), item.label);
      assert.equal(Number(groups[i]!['data-before']), item.before);
      assert.equal(Number(groups[i]!['data-after']), item.after);
    });
    assert.equal(groups.filter((g) => g.class!.includes('wrong')).length, 1);
  });

  it('renders a result without sweep or examples', () => {
    const bare = { ...syntheticResult(2, 3, 1), sweep: undefined, examples: undefined };
    const page = renderReport(bare);
    checkHtml(page);
    assert.match(page, /No example pictures/);
  });

  it('writes result.json and report.html atomically, and result.json round-trips', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-report-'));
    try {
      const r = { ...result, relativeDistance: Number.NaN };
      await writeResult(dir, r);
      await writeReport(dir, r);
      const back = JSON.parse(await fs.readFile(path.join(dir, 'result.json'), 'utf8')) as ResultDocument;
      assert.equal(back.relativeDistance, null, 'non-finite numbers become null');
      assert.deepEqual(back.before, result.before);
      assert.deepEqual(back.pool, result.pool);
      assert.deepEqual((await fs.readdir(dir)).sort(), ['report.html', 'result.json'], 'no temporary files left');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('report: helpers', () => {
  it('encodePng produces PNGs that the data reader decodes exactly (grey and RGB)', () => {
    const rand = lcg(9);
    const grey = Array.from({ length: 5 * 3 }, () => Math.floor(rand() * 256));
    const g = decodePng(Buffer.from(encodePng(grey, 5, 3, 1)));
    assert.deepEqual([g.width, g.height, g.channels], [5, 3, 1]);
    assert.deepEqual([...g.data], grey);
    const rgb = Array.from({ length: 4 * 2 * 3 }, () => Math.floor(rand() * 256));
    const c = decodePng(Buffer.from(encodePng(rgb, 4, 2, 3)));
    assert.deepEqual([...c.data], rgb);
    assert.throws(() => encodePng([1, 2], 2, 2, 1), RangeError);
  });

  it('ticks are round numbers inside the range', () => {
    assert.deepEqual(ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    const t = ticks(0.0712, 0.0893);
    assert.ok(t.length >= 3 && t.every((v) => v >= 0.0712 && v <= 0.0893));
  });
});
