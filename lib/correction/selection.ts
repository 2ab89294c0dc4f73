/**
 * Candidate selection of the cutting-plane loop: a Pareto pool over the two criteria
 * (violation V of the adversarial constraints, clean loss L) and the normalised weighted-sum
 * rule  ω·Ṽ + (1 − ω)·L̃  that picks the next iterate. Pure functions, no tensors.
 *
 * Conventions (docs/correction.md, "Selection"):
 * - Both criteria are minimised. a dominates b when a ≤ b in both and a < b in at least one.
 * - Candidates equal in both criteria: the first one seen is kept (ties never displace a member).
 * - A candidate is loss-feasible when L ≤ η. Only loss-feasible candidates are eligible when at
 *   least one is; when none is, the least infeasible (smallest L) is taken.
 * - Normalisation: Ṽ = (V − V_min)/(V_max − V_min) over the eligible candidates together with the
 *   loss-feasible Pareto-pool members (the Pareto pool gives a global scale, so that a tiny spread inside one line
 *   search is not blown up to [0, 1]); a criterion whose range is 0 contributes 0.
 * - Ties in the weighted score go to the smaller V, then the smaller ‖w − w₀‖, then the earlier id.
 *
 * The answer of a run (chooseAnswer, docs/correction.md "The answer and ω") is where ω acts: the
 * final Pareto front (the last round's Pareto pool, plus the points of the segment w₀ → w* that
 * segmentGrid describes) is filtered to L ≤ η and the member minimising ω·Ṽ + (1 − ω)·L̃, normalised
 * over those members, is returned. ω = 1 gives the least-violation point (chooseFinal), ω = 0 the
 * least clean loss (w₀ unless a point beats its loss).
 */

/** What selection needs to know about a candidate point. */
export interface Criteria {
  /** Violation of the adversarial constraints (sum of positive margin violations, or fraction misclassified). */
  violation: number;
  /** Mean clean cross-entropy on the clean subset. */
  cleanLoss: number;
  /** ‖w − w₀‖₂ (tie-breaker). */
  distance: number;
  /** Stable identifier, increasing in creation order (tie-breaker). */
  id: number;
}

/** True when a is at least as good as b in both criteria and strictly better in one. */
export function dominates(a: Pick<Criteria, 'violation' | 'cleanLoss'>, b: Pick<Criteria, 'violation' | 'cleanLoss'>): boolean {
  return (
    a.violation <= b.violation &&
    a.cleanLoss <= b.cleanLoss &&
    (a.violation < b.violation || a.cleanLoss < b.cleanLoss)
  );
}

function sameCriteria(a: Pick<Criteria, 'violation' | 'cleanLoss'>, b: Pick<Criteria, 'violation' | 'cleanLoss'>): boolean {
  return a.violation === b.violation && a.cleanLoss === b.cleanLoss;
}

function checkCriteria(point: Pick<Criteria, 'violation' | 'cleanLoss'>): void {
  if (!Number.isFinite(point.violation) || !Number.isFinite(point.cleanLoss)) {
    throw new RangeError('candidate criteria must be finite numbers');
  }
}

/**
 * The non-dominated subset of `points`, in their original order. Of several points with equal
 * criteria only the first is kept.
 */
export function paretoFilter<T extends Pick<Criteria, 'violation' | 'cleanLoss'>>(points: readonly T[]): T[] {
  const kept: T[] = [];
  points.forEach((point, i) => {
    checkCriteria(point);
    let keep = true;
    for (let j = 0; j < points.length && keep; j++) {
      if (j === i) continue;
      const other = points[j]!;
      if (dominates(other, point)) keep = false;
      else if (j < i && sameCriteria(other, point)) keep = false;
    }
    if (keep) kept.push(point);
  });
  return kept;
}

/**
 * The Pareto pool: every candidate ever offered is remembered as seen, only non-dominated ones stay.
 * Generic in the payload so the loop can attach weights or ids.
 */
export class ParetoPool<T extends Criteria> {
  private items: T[] = [];

  constructor(initial: readonly T[] = []) {
    for (const item of initial) this.offer(item);
  }

  /** Adds a candidate; returns true when it entered the pool (it is not dominated by, nor equal to, a member). */
  offer(candidate: T): boolean {
    checkCriteria(candidate);
    for (const member of this.items) {
      if (dominates(member, candidate) || sameCriteria(member, candidate)) return false;
    }
    this.items = this.items.filter((member) => !dominates(candidate, member));
    this.items.push(candidate);
    this.items.sort((a, b) => a.id - b.id);
    return true;
  }

  /** Empties the pool and offers `items` (a new round starts a new pool). */
  reset(items: readonly T[] = []): void {
    this.items = [];
    for (const item of items) this.offer(item);
  }

  /** Members in id order. */
  get members(): readonly T[] {
    return this.items;
  }

  get size(): number {
    return this.items.length;
  }

  has(id: number): boolean {
    return this.items.some((member) => member.id === id);
  }
}

/** Min–max normalisation to [0, 1] against a reference range; a zero range maps to 0. */
export function normaliseAgainst(value: number, min: number, max: number): number {
  const range = max - min;
  if (!(range > 0)) return 0;
  return Math.min(1, Math.max(0, (value - min) / range));
}

export interface WeightedChoice<T> {
  /** The chosen candidate. */
  chosen: T;
  /** Index of the chosen candidate in the input array. */
  index: number;
  /** Weighted score per input candidate (NaN for ineligible ones). */
  scores: number[];
  /** Whether the chosen candidate satisfies L ≤ η. */
  feasible: boolean;
}

/**
 * Picks among `candidates` the one minimising ω·Ṽ + (1 − ω)·L̃ (see the module comment for the
 * normalisation, the feasibility rule and the tie-breaks). `pool`, the Pareto pool's members, supplies the global scale.
 */
export function chooseWeighted<T extends Criteria>(
  candidates: readonly T[],
  pool: readonly T[],
  omega: number,
  eta: number,
): WeightedChoice<T> {
  if (candidates.length === 0) throw new RangeError('chooseWeighted needs at least one candidate');
  if (!(omega >= 0 && omega <= 1)) throw new RangeError('omega must be in [0, 1]');
  if (Number.isNaN(eta)) throw new RangeError('eta must be a number');
  for (const candidate of candidates) checkCriteria(candidate);

  const feasible = candidates.filter((c) => c.cleanLoss <= eta);
  if (feasible.length === 0) {
    // No step keeps the clean loss under η: take the least infeasible one (smallest L, then V).
    let best = 0;
    for (let i = 1; i < candidates.length; i++) {
      const a = candidates[i]!;
      const b = candidates[best]!;
      if (a.cleanLoss < b.cleanLoss || (a.cleanLoss === b.cleanLoss && better(a, b))) best = i;
    }
    return { chosen: candidates[best]!, index: best, scores: candidates.map(() => Number.NaN), feasible: false };
  }

  const reference = [...feasible, ...pool.filter((p) => p.cleanLoss <= eta)];
  const { index, scores } = weightedArgmin(candidates, reference, omega, eta);
  return { chosen: candidates[index]!, index, scores, feasible: true };
}

/**
 * The weighted choice both selections share: ω·Ṽ + (1 − ω)·L̃ for every loss-feasible point of
 * `points` (NaN for the others), both criteria min–max normalised over `reference`, and the index of
 * the smallest score (ties: smaller V, then smaller distance, then earlier id).
 */
function weightedArgmin<T extends Criteria>(points: readonly T[], reference: readonly Criteria[], omega: number, eta: number): { index: number; scores: number[] } {
  let vMin = Infinity;
  let vMax = -Infinity;
  let lMin = Infinity;
  let lMax = -Infinity;
  for (const point of reference) {
    vMin = Math.min(vMin, point.violation);
    vMax = Math.max(vMax, point.violation);
    lMin = Math.min(lMin, point.cleanLoss);
    lMax = Math.max(lMax, point.cleanLoss);
  }
  const scores = points.map((p) =>
    p.cleanLoss <= eta ? omega * normaliseAgainst(p.violation, vMin, vMax) + (1 - omega) * normaliseAgainst(p.cleanLoss, lMin, lMax) : Number.NaN,
  );
  let index = -1;
  for (let i = 0; i < points.length; i++) {
    const score = scores[i]!;
    if (Number.isNaN(score)) continue;
    if (index < 0 || score < scores[index]! || (score === scores[index]! && better(points[i]!, points[index]!))) index = i;
  }
  return { index, scores };
}

/** Tie-break order: smaller V, then smaller distance, then earlier id. */
function better(a: Criteria, b: Criteria): boolean {
  if (a.violation !== b.violation) return a.violation < b.violation;
  if (a.distance !== b.distance) return a.distance < b.distance;
  return a.id < b.id;
}

/**
 * The answer of a run: among the loss-feasible Pareto-pool members the one with the least violation
 * (the problem is "satisfy the constraints"; among the satisfying points the Pareto pool keeps only the
 * one with the lowest clean loss), ties by distance then id. Falls back to the smallest clean loss
 * when no member is loss-feasible (cannot happen when w₀ is in the Pareto pool, as L(w₀) < η).
 */
export function chooseFinal<T extends Criteria>(pool: readonly T[], eta: number): T {
  if (pool.length === 0) throw new RangeError('chooseFinal needs a non-empty Pareto pool');
  const feasible = pool.filter((p) => p.cleanLoss <= eta);
  if (feasible.length === 0) {
    return pool.reduce((a, b) => (b.cleanLoss < a.cleanLoss || (b.cleanLoss === a.cleanLoss && better(b, a)) ? b : a));
  }
  return feasible.reduce((a, b) => (better(b, a) ? b : a));
}

/**
 * The answer of a run for a given ω: among the loss-feasible members of the final front (L ≤ η), the
 * one minimising ω·Ṽ + (1 − ω)·L̃ with both criteria min–max normalised over those members; ties go
 * to the smaller V, then the smaller distance, then the earlier id. When no member is loss-feasible
 * the smallest clean loss is returned (as chooseFinal). ω = 1 returns exactly chooseFinal's point.
 *
 * The weighted sum over a fixed front is monotone in ω: a larger ω never returns a point with a larger
 * violation or a smaller clean loss (test/selection.test.ts checks this on random fronts).
 */
export function chooseAnswer<T extends Criteria>(front: readonly T[], omega: number, eta: number): WeightedChoice<T> {
  if (front.length === 0) throw new RangeError('chooseAnswer needs a non-empty front');
  if (!(omega >= 0 && omega <= 1)) throw new RangeError('omega must be in [0, 1]');
  if (Number.isNaN(eta)) throw new RangeError('eta must be a number');
  for (const point of front) checkCriteria(point);
  const eligible = front.filter((p) => p.cleanLoss <= eta);
  if (eligible.length === 0) {
    const chosen = chooseFinal(front, eta);
    return { chosen, index: front.indexOf(chosen), scores: front.map(() => Number.NaN), feasible: false };
  }
  const { index, scores } = weightedArgmin(front, eligible, omega, eta);
  return { chosen: front[index]!, index, scores, feasible: true };
}

/**
 * Interpolation parameters t of the closing segment w₀ + t·(w* − w₀) whose points are offered to the
 * final front: 0 (w₀ measured on the final X̃), then `points` equally spaced interior values. w* itself
 * (t = 1) is already in the Pareto pool. `points` = 0 gives [0] only.
 */
export function segmentGrid(points: number): number[] {
  if (!Number.isInteger(points) || points < 0) throw new RangeError(`segment points must be an integer ≥ 0, got ${points}`);
  return [0, ...Array.from({ length: points }, (_, j) => (j + 1) / (points + 1))];
}
