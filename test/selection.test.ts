import assert from 'node:assert/strict';
import {
  ParetoPool,
  chooseAnswer,
  chooseFinal,
  chooseWeighted,
  dominates,
  normaliseAgainst,
  paretoFilter,
  segmentGrid,
  type Criteria,
} from '../lib/correction/selection.js';

/** A small deterministic generator so the random cases are reproducible. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function point(id: number, violation: number, cleanLoss: number, distance = 0): Criteria {
  return { id, violation, cleanLoss, distance };
}

function randomPoints(rand: () => number, count: number, grid = 0): Criteria[] {
  return Array.from({ length: count }, (_, id) => {
    const v = grid > 0 ? Math.floor(rand() * grid) : rand();
    const l = grid > 0 ? Math.floor(rand() * grid) : rand();
    return point(id, v, l, rand());
  });
}

describe('selection: Pareto pool', () => {
  it('dominance is strict in one criterion and weak in the other', () => {
    assert.equal(dominates(point(0, 1, 1), point(1, 1, 2)), true);
    assert.equal(dominates(point(0, 1, 1), point(1, 2, 1)), true);
    assert.equal(dominates(point(0, 1, 1), point(1, 1, 1)), false);
    assert.equal(dominates(point(0, 1, 3), point(1, 2, 1)), false);
  });

  it('paretoFilter keeps exactly the points no other point dominates (random sets with ties)', () => {
    const rand = lcg(7);
    for (let trial = 0; trial < 200; trial++) {
      const points = randomPoints(rand, 1 + Math.floor(rand() * 30), trial % 2 === 0 ? 6 : 0);
      const kept = paretoFilter(points);
      for (const p of points) {
        const dominated = points.some((q) => dominates(q, p));
        const earlierTwin = points.some((q) => q.id < p.id && q.violation === p.violation && q.cleanLoss === p.cleanLoss);
        assert.equal(kept.includes(p), !dominated && !earlierTwin, `trial ${trial}, point ${p.id}`);
      }
      // The kept points are mutually non-dominated and in input order.
      for (const a of kept) for (const b of kept) assert.equal(dominates(a, b), false);
      assert.deepEqual(kept.map((p) => p.id), [...kept.map((p) => p.id)].sort((a, b) => a - b));
    }
  });

  it('the incremental pool equals the batch filter of everything offered', () => {
    const rand = lcg(11);
    for (let trial = 0; trial < 100; trial++) {
      const points = randomPoints(rand, 40, trial % 3 === 0 ? 5 : 0);
      const pool = new ParetoPool<Criteria>();
      for (const p of points) pool.offer(p);
      assert.deepEqual(pool.members.map((p) => p.id), paretoFilter(points).map((p) => p.id));
    }
  });

  it('offer reports whether the candidate entered, and evicts what it dominates', () => {
    const pool = new ParetoPool<Criteria>([point(0, 5, 1), point(1, 1, 5)]);
    assert.equal(pool.offer(point(2, 6, 6)), false);
    assert.equal(pool.offer(point(3, 5, 1)), false, 'an equal point does not enter');
    assert.equal(pool.offer(point(4, 0.5, 0.5)), true);
    assert.deepEqual(pool.members.map((p) => p.id), [4]);
    assert.equal(pool.has(4), true);
    assert.equal(pool.has(0), false);
  });

  it('rejects non-finite criteria', () => {
    assert.throws(() => paretoFilter([point(0, Number.NaN, 1)]), { name: 'RangeError', message: 'candidate criteria must be finite numbers' });
    assert.throws(() => new ParetoPool<Criteria>().offer(point(0, 1, Infinity)), RangeError);
  });
});

describe('selection: weighted choice', () => {
  it('normaliseAgainst maps the range to [0, 1] and a zero range to 0', () => {
    assert.equal(normaliseAgainst(2, 2, 4), 0);
    assert.equal(normaliseAgainst(4, 2, 4), 1);
    assert.equal(normaliseAgainst(3, 2, 4), 0.5);
    assert.equal(normaliseAgainst(3, 3, 3), 0);
  });

  it('ω = 1 picks the least violation, ω = 0 the least clean loss, among loss-feasible candidates', () => {
    const rand = lcg(3);
    for (let trial = 0; trial < 100; trial++) {
      const candidates = randomPoints(rand, 2 + Math.floor(rand() * 8));
      const pool = randomPoints(rand, 5).map((p) => ({ ...p, id: p.id + 100 }));
      const eta = 0.3 + rand() * 0.7;
      const feasible = candidates.filter((c) => c.cleanLoss <= eta);
      const byV = chooseWeighted(candidates, pool, 1, eta);
      const byL = chooseWeighted(candidates, pool, 0, eta);
      if (feasible.length === 0) {
        assert.equal(byV.feasible, false);
        const minL = Math.min(...candidates.map((c) => c.cleanLoss));
        assert.equal(byV.chosen.cleanLoss, minL);
        continue;
      }
      assert.equal(byV.chosen.violation, Math.min(...feasible.map((c) => c.violation)));
      assert.equal(byL.chosen.cleanLoss, Math.min(...feasible.map((c) => c.cleanLoss)));
      assert.ok(byV.chosen.cleanLoss <= eta && byL.chosen.cleanLoss <= eta);
      // Scores are NaN exactly for the infeasible candidates.
      candidates.forEach((c, i) => assert.equal(Number.isNaN(byV.scores[i]), c.cleanLoss > eta));
    }
  });

  it('the choice minimises the documented score, and is invariant to rescaling either criterion', () => {
    const rand = lcg(5);
    for (let trial = 0; trial < 100; trial++) {
      const candidates = randomPoints(rand, 6);
      const pool = randomPoints(rand, 6).map((p) => ({ ...p, id: p.id + 100 }));
      const eta = 2; // everything feasible
      const omega = rand();
      const choice = chooseWeighted(candidates, pool, omega, eta);
      const all = [...candidates, ...pool];
      const vs = all.map((p) => p.violation);
      const ls = all.map((p) => p.cleanLoss);
      const score = (c: Criteria) =>
        omega * normaliseAgainst(c.violation, Math.min(...vs), Math.max(...vs)) +
        (1 - omega) * normaliseAgainst(c.cleanLoss, Math.min(...ls), Math.max(...ls));
      const best = Math.min(...candidates.map(score));
      assert.ok(Math.abs(score(choice.chosen) - best) < 1e-12);
      const scaled = (p: Criteria) => ({ ...p, violation: p.violation * 1000, cleanLoss: p.cleanLoss * 0.01 + 5 });
      const again = chooseWeighted(candidates.map(scaled), pool.map(scaled), omega, 100);
      assert.equal(again.index, choice.index);
    }
  });

  it('the pool scale matters: a tiny spread inside the candidates is not blown up', () => {
    // Candidates differ by 0.001 in V and 0.1 in L; the pool's V range is 10, its L range 0.1.
    const candidates = [point(0, 1.0, 0.2), point(1, 0.999, 0.3)];
    const pool = [point(10, 10, 0.2), point(11, 0, 0.3)];
    assert.equal(chooseWeighted(candidates, pool, 0.5, 1).index, 0);
    // Without the pool, both criteria span [0, 1] and the tie goes to the smaller violation.
    assert.equal(chooseWeighted(candidates, [], 0.5, 1).index, 1);
  });

  it('ties go to the smaller violation, then the smaller distance, then the earlier id', () => {
    const equalScore = [point(0, 1, 0, 5), point(1, 0, 1, 5)];
    assert.equal(chooseWeighted(equalScore, [], 0.5, 2).index, 1);
    const twins = [point(3, 1, 1, 2), point(2, 1, 1, 1)];
    assert.equal(chooseWeighted(twins, [], 0.3, 2).chosen.id, 2);
    const sameAll = [point(8, 1, 1, 1), point(4, 1, 1, 1)];
    assert.equal(chooseWeighted(sameAll, [], 0.3, 2).chosen.id, 4);
  });

  it('rejects bad arguments with exact messages', () => {
    assert.throws(() => chooseWeighted([], [], 0.2, 1), { name: 'RangeError', message: 'chooseWeighted needs at least one candidate' });
    assert.throws(() => chooseWeighted([point(0, 1, 1)], [], 1.5, 1), { name: 'RangeError', message: 'omega must be in [0, 1]' });
    assert.throws(() => chooseFinal([], 1), { name: 'RangeError', message: 'chooseFinal needs a non-empty Pareto pool' });
  });

  it('chooseFinal takes the least-violation loss-feasible member', () => {
    const pool = [point(0, 3, 0.1), point(1, 1, 0.2), point(2, 0, 0.9)];
    assert.equal(chooseFinal(pool, 0.5).id, 1);
    assert.equal(chooseFinal(pool, 1).id, 2);
    assert.equal(chooseFinal(pool, 0.05).id, 0, 'nothing feasible: smallest loss');
  });
});

describe('selection: the answer for ω (chooseAnswer)', () => {
  /** A random front: the Pareto filter of random points, with a loss level that leaves some members out. */
  function randomFront(rand: () => number): { front: Criteria[]; eta: number } {
    const front = paretoFilter(randomPoints(rand, 5 + Math.floor(rand() * 30), rand() < 0.3 ? 8 : 0));
    const losses = front.map((p) => p.cleanLoss).sort((a, b) => a - b);
    const eta = rand() < 0.2 ? losses[losses.length - 1]! + 1 : losses[Math.floor(rand() * losses.length)]!;
    return { front, eta };
  }

  it('minimises the documented score over the loss-feasible members, normalised over them', () => {
    const rand = lcg(21);
    for (let trial = 0; trial < 200; trial++) {
      const { front, eta } = randomFront(rand);
      const omega = trial % 10 === 0 ? (trial % 20 === 0 ? 0 : 1) : rand();
      const choice = chooseAnswer(front, omega, eta);
      const eligible = front.filter((p) => p.cleanLoss <= eta);
      assert.ok(choice.feasible && choice.chosen.cleanLoss <= eta);
      const vs = eligible.map((p) => p.violation);
      const ls = eligible.map((p) => p.cleanLoss);
      const score = (p: Criteria) =>
        omega * normaliseAgainst(p.violation, Math.min(...vs), Math.max(...vs)) + (1 - omega) * normaliseAgainst(p.cleanLoss, Math.min(...ls), Math.max(...ls));
      assert.ok(Math.abs(score(choice.chosen) - Math.min(...eligible.map(score))) < 1e-12, `trial ${trial}`);
      front.forEach((p, i) => assert.equal(Number.isNaN(choice.scores[i]), p.cleanLoss > eta));
      assert.equal(front[choice.index], choice.chosen);
    }
  });

  it('ω = 1 is chooseFinal (least violation), ω = 0 the least clean loss among the loss-feasible members', () => {
    const rand = lcg(22);
    for (let trial = 0; trial < 200; trial++) {
      const { front, eta } = randomFront(rand);
      const eligible = front.filter((p) => p.cleanLoss <= eta);
      assert.equal(chooseAnswer(front, 1, eta).chosen, chooseFinal(front, eta));
      assert.equal(chooseAnswer(front, 0, eta).chosen.cleanLoss, Math.min(...eligible.map((p) => p.cleanLoss)));
    }
  });

  it('is monotone in ω: a larger ω never gives more violation or less clean loss', () => {
    const rand = lcg(23);
    const omegas = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
    for (let trial = 0; trial < 200; trial++) {
      const { front, eta } = randomFront(rand);
      const picks = omegas.map((w) => chooseAnswer(front, w, eta).chosen);
      for (let i = 1; i < picks.length; i++) {
        assert.ok(picks[i]!.violation <= picks[i - 1]!.violation, `trial ${trial}: V at ω ${omegas[i]}`);
        assert.ok(picks[i]!.cleanLoss >= picks[i - 1]!.cleanLoss, `trial ${trial}: L at ω ${omegas[i]}`);
      }
    }
  });

  it('moves along a front: ω picks members further along a convex front as it grows', () => {
    // Points on V = (1 − t)², L = t for t = 0, 0.2, …, 1 (ids 0–5); both ranges are [0, 1], so the score is
    // ω(1 − t)² + (1 − ω)t, minimised (worked by hand) at ids 0, 0, 1, 3, 4, 5 for ω = 0, 0.2, …, 1.
    const front = [0, 0.2, 0.4, 0.6, 0.8, 1].map((t, id) => point(id, (1 - t) ** 2, t));
    const ids = [0, 0.2, 0.4, 0.6, 0.8, 1].map((w) => chooseAnswer(front, w, 2).chosen.id);
    assert.deepEqual(ids, [0, 0, 1, 3, 4, 5]);
  });

  it('falls back to the smallest clean loss when no member is loss-feasible, and checks its arguments', () => {
    const front = [point(0, 3, 0.5), point(1, 1, 0.7)];
    const none = chooseAnswer(front, 1, 0.1);
    assert.equal(none.feasible, false);
    assert.equal(none.chosen.id, 0);
    assert.throws(() => chooseAnswer([], 0.5, 1), { name: 'RangeError', message: 'chooseAnswer needs a non-empty front' });
    assert.throws(() => chooseAnswer(front, -0.1, 1), { name: 'RangeError', message: 'omega must be in [0, 1]' });
    assert.throws(() => chooseAnswer([point(0, Number.NaN, 1)], 0.5, 1), { name: 'RangeError', message: 'candidate criteria must be finite numbers' });
  });

  it('segmentGrid: w₀ then equally spaced interior points', () => {
    assert.deepEqual(segmentGrid(0), [0]);
    assert.deepEqual(segmentGrid(1), [0, 0.5]);
    assert.deepEqual(segmentGrid(3), [0, 0.25, 0.5, 0.75]);
    assert.throws(() => segmentGrid(-1), { name: 'RangeError', message: 'segment points must be an integer ≥ 0, got -1' });
    assert.throws(() => segmentGrid(1.5), RangeError);
  });
});
