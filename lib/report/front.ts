/**
 * The ω front of report.html: the final front the run's answer was chosen from (result.pool: the
 * last round's Pareto pool with the closing-segment points), each member as a point of violation V
 * against clean loss L, the answer ringed, and the point each ω of OMEGA_GRID would pick.
 *
 * The picks are made by the library's chooseAnswer on the recorded front and η, never by a copy of
 * the rule here, so the marks are exactly what `correct()` returns for that ω on this front.
 */
import { chooseAnswer } from '../correction/selection.js';
import type { CandidateRecord } from '../correction/types.js';
import { Axes, COLORS, attr, escapeHtml, extent, fmt, legend, short, svg, type Frame } from './plot.js';
import type { ResultDocument } from './result.js';

/** The ω values the report marks on the front (the run's own ω is added when it is not one of them). */
export const OMEGA_GRID: readonly number[] = [0, 0.2, 0.4, 0.6, 0.8, 1];

/** The point one ω picks from the recorded front. */
export interface OmegaPick {
  omega: number;
  /** The front member chooseAnswer returns. */
  point: CandidateRecord;
  /** Whether the pick satisfies L ≤ η (false only when no member of the front does). */
  feasible: boolean;
}

/** The ω values of the report: OMEGA_GRID and the run's ω, ascending. */
export function reportOmegas(result: Pick<ResultDocument, 'options'>): number[] {
  const set = new Set<number>([...OMEGA_GRID, result.options.omega]);
  return [...set].sort((a, b) => a - b);
}

/** For each ω, the front member chooseAnswer picks (the front and η as result.json records them). */
export function omegaPicks(result: Pick<ResultDocument, 'pool' | 'eta'>, omegas: readonly number[]): OmegaPick[] {
  return omegas.map((omega) => {
    const choice = chooseAnswer(result.pool, omega, result.eta);
    return { omega, point: choice.chosen, feasible: choice.feasible };
  });
}

/**
 * Line searches in which ω may have chosen the next iterate. The iterate is the loss-feasible
 * candidate with the smallest weighted score (ties: smaller V), so ω cannot matter when at most one
 * candidate has L ≤ η, nor when one of them has a smaller V than each other feasible candidate and no
 * larger L (its score is then never larger, and a tie goes to it). Every other search with two or
 * more feasible candidates is counted. 0 means the whole path of the run is the same for every ω, so
 * a rerun with another --omega ends on this front.
 */
export function omegaDependentSteps(result: Pick<ResultDocument, 'candidates'>): number {
  const bySearch = new Map<string, CandidateRecord[]>();
  for (const c of result.candidates) {
    if (c.segment || c.iteration === 0 || !c.feasible) continue;
    const key = `${c.round}:${c.iteration}`;
    bySearch.set(key, [...(bySearch.get(key) ?? []), c]);
  }
  let count = 0;
  for (const feasible of bySearch.values()) {
    if (feasible.length < 2) continue;
    const settled = feasible.some((c) => feasible.every((o) => o === c || (c.violation < o.violation && c.cleanLoss <= o.cleanLoss)));
    if (!settled) count++;
  }
  return count;
}

/** How a front member came about, for labels and the table. */
export function describePoint(p: CandidateRecord): string {
  if (p.segment) return p.alpha === 0 ? 'w₀ (segment t = 0)' : `segment t = ${short(p.alpha)}`;
  if (p.id === 0) return 'w₀';
  if (p.iteration === 0) return `start of round ${p.round}`;
  return `round ${p.round}, iteration ${p.iteration}, α ${short(p.alpha)}`;
}

const FRONT_FRAME: Frame = { width: 720, height: 410, left: 64, right: 150, top: 40, bottom: 46 };
const SEGMENT_COLOR = '#7fb0ea';

function omegaList(omegas: number[]): string {
  return `ω ${omegas.map((o) => short(o)).join(', ')}`;
}

/** The plot: every front member, η, the answer, and a label per distinct ω pick. */
export function frontSvg(result: ResultDocument, picks: readonly OmegaPick[]): string {
  const f = FRONT_FRAME;
  const front = result.pool;
  const axes = new Axes(extent(front.map((p) => p.cleanLoss).concat(result.eta, result.cleanLossBefore)), extent(front.map((p) => p.violation).concat(0)), f);
  const xLabel = `clean loss L (mean cross-entropy, ${result.options.cleanSize} clean training images)`;
  const yLabel = result.options.violation === 'fraction' ? 'violation V (fraction of X̃ misclassified)' : 'violation V (sum of margin violations on X̃)';
  const parts = [axes.frame(xLabel, yLabel)];
  const bottom = f.height - f.bottom;
  const ex = axes.px(result.eta).toFixed(1);
  parts.push(`<line x1="${ex}" x2="${ex}" y1="${f.top}" y2="${bottom}" class="eta" data-eta="${attr(result.eta)}"><title>η = ${fmt(result.eta, 4)}: points to the right are not eligible</title></line>`);
  parts.push(`<text x="${ex}" y="${f.top - 4}" class="tick" text-anchor="middle">η</text>`);
  // The input model's clean loss, for reference (w₀ itself is on the front only while no point beats its loss).
  const sx = axes.px(result.cleanLossBefore).toFixed(1);
  parts.push(`<line x1="${sx}" x2="${sx}" y1="${f.top}" y2="${bottom}" class="start-loss" data-loss="${attr(result.cleanLossBefore)}"><title>clean loss of the input model w₀: ${fmt(result.cleanLossBefore, 4)}</title></line>`);
  parts.push(`<text x="${sx}" y="${f.top - 4}" class="tick" text-anchor="middle">L(w₀)</text>`);
  const sorted = [...front].sort((a, b) => a.cleanLoss - b.cleanLoss);
  if (sorted.length > 1) {
    parts.push(`<polyline class="front" points="${sorted.map((p) => `${axes.px(p.cleanLoss).toFixed(1)},${axes.py(p.violation).toFixed(1)}`).join(' ')}"/>`);
  }
  for (const p of front) {
    const eligible = p.cleanLoss <= result.eta;
    const cls = ['front-point', p.segment ? 'segment' : 'member', eligible ? 'eligible' : 'ineligible'].join(' ');
    parts.push(
      `<circle class="${cls}" cx="${axes.px(p.cleanLoss).toFixed(1)}" cy="${axes.py(p.violation).toFixed(1)}" r="4.5" data-id="${p.id}" data-violation="${attr(p.violation)}" data-loss="${attr(p.cleanLoss)}"><title>#${p.id} ${escapeHtml(describePoint(p))}: V ${fmt(p.violation, 4)}, ${p.misclassified} of X̃ misclassified, L ${fmt(p.cleanLoss, 4)}${eligible ? '' : ' &gt; η'}, ‖w − w₀‖ ${fmt(p.distance, 4)}</title></circle>`,
    );
  }
  const ch = result.chosen;
  parts.push(
    `<circle class="answer" cx="${axes.px(ch.cleanLoss).toFixed(1)}" cy="${axes.py(ch.violation).toFixed(1)}" r="9" data-id="${ch.id}" data-violation="${attr(ch.violation)}" data-loss="${attr(ch.cleanLoss)}"><title>this run's answer (ω = ${result.options.omega}): #${ch.id}</title></circle>`,
  );

  // One label per distinct picked point, at the right margin, stacked top to bottom in the order of the
  // points' heights with a leader line to the point, so labels of neighbouring points never overlap.
  const groups = new Map<number, { point: CandidateRecord; omegas: number[] }>();
  for (const pick of picks) {
    const g = groups.get(pick.point.id) ?? { point: pick.point, omegas: [] };
    g.omegas.push(pick.omega);
    groups.set(pick.point.id, g);
  }
  const labelled = [...groups.values()].sort((a, b) => axes.py(a.point.violation) - axes.py(b.point.violation) || a.point.cleanLoss - b.point.cleanLoss);
  const step = 16;
  const labelX = f.width - f.right + 10;
  let y = f.top + 8;
  const ys = labelled.map((g) => {
    y = Math.max(y, axes.py(g.point.violation));
    const at = y;
    y += step;
    return at;
  });
  // Labels pushed below the frame move up as a block.
  const overflow = ys.length > 0 ? ys[ys.length - 1]! - bottom : 0;
  if (overflow > 0) for (let i = ys.length - 1, limit = bottom; i >= 0; i--, limit -= step) ys[i] = Math.min(ys[i]!, limit);
  labelled.forEach((g, i) => {
    const px = axes.px(g.point.cleanLoss);
    const py = axes.py(g.point.violation);
    const ly = ys[i]!;
    const isAnswer = g.point.id === ch.id;
    parts.push(
      `<g class="omega-mark${isAnswer ? ' is-answer' : ''}" data-omegas="${g.omegas.join(',')}" data-id="${g.point.id}" data-violation="${attr(g.point.violation)}" data-loss="${attr(g.point.cleanLoss)}">` +
        `<circle class="omega-pick" cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="6.5"/>` +
        `<polyline class="leader" points="${(px + 7).toFixed(1)},${py.toFixed(1)} ${(labelX - 4).toFixed(1)},${ly.toFixed(1)}"/>` +
        `<text x="${labelX}" y="${ly.toFixed(1)}" class="omega-label" dominant-baseline="middle">${escapeHtml(omegaList(g.omegas))}</text>` +
        `</g>`,
    );
  });
  parts.push(
    legend(
      [
        ['Pareto pool', COLORS.pool],
        ['closing segment', SEGMENT_COLOR],
        ['L > η (not eligible)', COLORS.candidate],
        [`answer (ω = ${short(result.options.omega)})`, COLORS.chosen],
      ],
      { ...f, top: 6 },
    ),
  );
  return svg('omega-front', 'The final front: the point each ω picks', parts.join(''), f);
}

/** The table beside the plot: ω, the picked point, its criteria. */
function picksTable(result: ResultDocument, picks: readonly OmegaPick[]): string {
  const count = result.adversarial.count;
  const rows = picks.map((pick) => {
    const p = pick.point;
    const own = pick.omega === result.options.omega;
    return (
      `<tr class="omega-row${own ? ' headline' : ''}" data-omega="${pick.omega}" data-id="${p.id}">` +
      `<td>${short(pick.omega)}${own ? ' (this run)' : ''}</td><td>#${p.id} ${escapeHtml(describePoint(p))}</td>` +
      `<td>${fmt(p.violation, 4)}</td><td>${p.misclassified} of ${count}</td><td>${fmt(p.cleanLoss, 4)}${pick.feasible ? '' : ' &gt; η'}</td><td>${fmt(p.distance, 4)}</td></tr>`
    );
  });
  const head = ['ω', 'picked point', 'V', 'X̃ misclassified', 'clean loss L', '‖w − w₀‖'];
  return `<table class="omega-picks"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** The section of report.html: heading, caption, plot and table (empty when the result has no front). */
export function frontSection(result: ResultDocument): string {
  if (!Array.isArray(result.pool) || result.pool.length === 0) return '';
  const omegas = reportOmegas(result);
  const picks = omegaPicks(result, omegas);
  const own = picks.find((p) => p.omega === result.options.omega)!;
  const eligible = result.pool.filter((p) => p.cleanLoss <= result.eta).length;
  const segment = result.pool.filter((p) => p.segment).length;
  const dependent = omegaDependentSteps(result);
  const searches = new Set(result.candidates.filter((c) => !c.segment && c.iteration > 0).map((c) => `${c.round}:${c.iteration}`)).size;
  const rerun =
    dependent === 0
      ? `In this run no line search offered ω a choice (each had at most one candidate with L ≤ η, or one with less violation and no more loss than the others), so ω chose nothing but the answer: every step of the run is the same for any ω, and rerunning the same command with <code>--omega 0.2</code> (say) returns the point marked ω 0.2.`
      : `In ${dependent} of this run's ${searches} line searches more than one candidate had L ≤ η and none was best in both criteria, so ω may also have chosen the next iterate there; a rerun with another <code>--omega</code> can therefore take a different path and end on a different front, so a mark is the point that ω picks from <em>this</em> front (exact when the path stays the same).`;
  const mismatch =
    own.point.id === result.chosen.id
      ? ''
      : ` <b>Note:</b> the recorded answer (#${result.chosen.id}) is not the point the current rule picks for this run's ω (#${own.point.id}); the result was written by a version that chose the answer differently.`;
  const plural = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;
  const eligibility =
    eligible === result.pool.length
      ? `All of them have clean loss L ≤ η (the dashed line; the dotted line is the input model's L), so each can be chosen. `
      : `Only the ${plural(eligible, 'point')} with clean loss L ≤ η (left of the dashed line; the dotted line is the input model's L) can be chosen. `;
  const caption =
    `Each point is a member of the final front the answer was chosen from (${plural(result.pool.length, 'point')}): the last round's Pareto pool (blue) and ${plural(segment, 'point')} of the closing segment w₀ + t·(w* − w₀) (light blue) between the input weights w₀ and w*, the least-violating point the cutting planes reached, all measured on the final X̃ (${result.adversarial.count} adversarial examples) and the clean subset. ` +
    eligibility +
    `ω picks the eligible point with the smallest ω·Ṽ + (1 − ω)·L̃, V and L rescaled to [0, 1] over the eligible points: ω = 1 takes the least violation, ω = 0 the least clean loss, and a larger ω never picks more violation. ` +
    `A black ring and a label at the right mark the point each ω picks (the library's chooseAnswer on this front); the red ring is this run's answer (ω = ${short(result.options.omega)}). ${rerun} ` +
    `Only training-side criteria are plotted; the test metrics at the top are those of the answer alone.${mismatch}`;
  return [
    '<h2>The ω front: which point each ω picks</h2>',
    `<p class="caption">${caption}</p>`,
    `<div class="plots">${frontSvg(result, picks)}</div>`,
    picksTable(result, picks),
  ].join('\n');
}

/** Styles of the section (appended to the run report's style sheet). */
export const FRONT_STYLE = `
circle.front-point.member{fill:${COLORS.pool}}circle.front-point.segment{fill:${SEGMENT_COLOR}}
circle.front-point.ineligible{fill:#fff;stroke:${COLORS.candidate};stroke-width:1.5}
circle.answer{fill:none;stroke:${COLORS.chosen};stroke-width:2.5}
circle.omega-pick{stroke:#1d2330;stroke-width:1.2;fill:none}
polyline.leader{stroke:#9aa1ac;stroke-width:.8;stroke-dasharray:2 2;fill:none}
text.omega-label{font-size:11px;fill:#1d2330}g.is-answer text.omega-label{fill:${COLORS.chosen};font-weight:600}
p.caption{max-width:720px}table.omega-picks td:nth-child(2),table.omega-picks th:nth-child(2){text-align:left}
line.start-loss{stroke:#5c6370;stroke-dasharray:1 3;stroke-width:1.2}
`;
