/**
 * The Pareto pool in the loop (docs/correction.md, step 5 and "The answer and ω"): the line search's
 * candidates are offered to the pool and the next iterate is chosen among them; at the end the final
 * front (the pool plus the closing segment w₀ → w*) gives the answer for ω. The rules themselves
 * (dominance, the weighted choice) are in selection.ts.
 */
import { candidateEntry, type PointCriteria } from './criteria.js';
import { lineSearch } from './line-search.js';
import { ParetoPool, chooseAnswer, chooseFinal, chooseWeighted, segmentGrid } from './selection.js';
import { stripW, type ParetoPoolEntry } from './state.js';
import type { CandidateRecord } from './types.js';

export interface Selection {
  /** The next iterate w_{k+1}, or undefined when there were no candidates. */
  next: ParetoPoolEntry | undefined;
  /** How many candidates entered the Pareto pool. */
  entered: number;
}

/**
 * Chooses the next iterate among this iteration's candidates by the weighted rule (against the
 * pool's global scale, before the candidates are offered), then offers every candidate to the pool.
 */
export function selectAndOffer(candidates: readonly ParetoPoolEntry[], paretoPool: ParetoPool<ParetoPoolEntry>, omega: number, eta: number): Selection {
  if (candidates.length === 0) return { next: undefined, entered: 0 };
  const next = chooseWeighted(candidates, paretoPool.members, omega, eta).chosen;
  let entered = 0;
  for (const c of candidates) if (paretoPool.offer(c)) entered++;
  return { next, entered };
}

/** The least violation among the loss-feasible members (Infinity when none). */
export function bestFeasibleViolation(members: readonly ParetoPoolEntry[]): number {
  return Math.min(...members.filter((p) => p.feasible).map((p) => p.violation), Infinity);
}

export interface FinalAnswer {
  /** The final front: the pool's members with the non-dominated segment points. */
  front: ParetoPoolEntry[];
  /** Every segment point evaluated, in order (for result.candidates). */
  segment: CandidateRecord[];
  /** The answer for ω. */
  chosen: ParetoPoolEntry;
}

/**
 * The answer of a run. w* = the loss-feasible member with least violation (chooseFinal); when it is
 * not w₀, the segment w₀ + t·(w* − w₀) on segmentGrid(segmentPoints) is evaluated and offered to a
 * copy of the pool; ω picks from the result (chooseAnswer). Segment points get ids from `firstId`.
 */
export async function finalAnswer(
  members: readonly ParetoPoolEntry[],
  args: {
    w0: Float64Array;
    eta: number;
    omega: number;
    segmentPoints: number;
    round: number;
    firstId: number;
    evaluate: (w: Float64Array) => Promise<PointCriteria>;
    checkAbort?: () => void;
  },
): Promise<FinalAnswer> {
  const front = new ParetoPool<ParetoPoolEntry>(members);
  const segment: CandidateRecord[] = [];
  const best = chooseFinal(members, args.eta);
  if (best.distance > 0) {
    let id = args.firstId;
    const points = await lineSearch(args.w0, best.w, segmentGrid(args.segmentPoints), args.evaluate, args.checkAbort);
    for (const { t, w, at } of points) {
      const entry = candidateEntry(at, w, args.w0, args.eta, { id: id++, round: args.round, iteration: 0, alpha: t, segment: true });
      segment.push(stripW(entry));
      front.offer(entry);
    }
  }
  const chosen = chooseAnswer(front.members, args.omega, args.eta).chosen;
  return { front: [...front.members], segment, chosen };
}
