/**
 * The time budget of the correction loop (options.budgetSeconds, `advcorrect correct --budget-s`):
 * validation before any work, the two verdicts (after an iteration, after a round), a run whose
 * budget is shorter than one iteration, and the flag.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { Command } from 'commander';
import { initBackend } from '../lib/backend/index.js';
import { correct } from '../lib/correction/correct.js';
import { BUDGET_MAX_ROUNDS, resolveCorrectionOptions } from '../lib/correction/options.js';
import { budgetAfterIteration, budgetAfterRound, checkBudgetFits, iterationFloorMs } from '../lib/correction/stopping.js';
import { addCorrectionOptions, settingsFromFlags } from '../lib/cli/run-options.js';
import { saveModel } from '../lib/models/io.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('correction: time budget', function () {
  this.timeout(60_000);

  it('budgetSeconds is validated with exact messages; without rounds it allows BUDGET_MAX_ROUNDS', () => {
    for (const bad of [0, -1, Infinity, Number.NaN]) {
      assert.throws(() => resolveCorrectionOptions({ budgetSeconds: bad }), { name: 'RangeError', message: `options.budgetSeconds must be a finite number > 0, got ${bad}` });
    }
    assert.throws(() => resolveCorrectionOptions({ budgetSeconds: '60' as never }), { name: 'TypeError', message: 'options.budgetSeconds must be a number' });
    assert.equal(resolveCorrectionOptions({ budgetSeconds: 60 }).rounds, BUDGET_MAX_ROUNDS);
    assert.equal(resolveCorrectionOptions({ budgetSeconds: 60, rounds: 3 }).rounds, 3);
    assert.equal(resolveCorrectionOptions({}).budgetSeconds, undefined);
    assert.equal(resolveCorrectionOptions({}).rounds, 2, 'no budget: the usual default');
  });

  it('after an iteration: spent at or past the budget, named first_iteration in round 1 iteration 1', () => {
    assert.equal(budgetAfterIteration(10, 9_999, 1, 1), undefined);
    const first = budgetAfterIteration(10, 10_000, 1, 1)!;
    assert.equal(first.reason, 'first_iteration');
    assert.match(first.notice, /shorter than one iteration/);
    const later = budgetAfterIteration(10, 12_000, 2, 3)!;
    assert.deepEqual({ reason: later.reason, rounds: later.rounds }, { reason: 'spent', rounds: 2 });
    assert.match(later.notice, /spent in round 2 \(iteration 3, 12\.0 s\)/);
    assert.equal(budgetAfterIteration(10, 12_000, 1, 2)!.reason, 'spent');
  });

  it('after a round: another round starts only when the mean round time still fits', () => {
    // 2 rounds in 40 s: a mean of 20 s; 40 + 20 ≤ 60 fits, ≤ 59 does not.
    assert.equal(budgetAfterRound(60, 40_000, 2, 20), undefined);
    const full = budgetAfterRound(59, 40_000, 2, 20)!;
    assert.equal(full.reason, 'no_room');
    assert.match(full.notice, /another round \(about 20\.0 s\) would not fit in the time budget of 59 s/);
    assert.equal(budgetAfterRound(600, 40_000, 3, 3)!.reason, 'rounds', 'the round limit ends the run first');
  });

  it('the floor of one iteration is its clean-loss passes; a budget below it is refused with the figures', () => {
    assert.equal(iterationFloorMs(200, 4), 1000, '4 line-search passes and one for the gradient');
    assert.doesNotThrow(() => checkBudgetFits(undefined, 1e9, 4, 500));
    assert.doesNotThrow(() => checkBudgetFits(1, 200, 4, 500), 'exactly the floor fits');
    assert.throws(() => checkBudgetFits(0.9, 200, 4, 500), {
      name: 'RangeError',
      message:
        'the time budget (budgetSeconds, --budget-s: 0.9 s) is shorter than one iteration: its clean-loss passes alone take at least 1.0 s here ' +
        '(5 forward passes over 500 clean images at 200 ms each); give a budget of at least 1 s',
    });
  });

  it('correct() refuses a budget shorter than one iteration before the loop starts', async () => {
    await initBackend();
    const model = tfl.sequential();
    model.add(tfl.layers.flatten({ inputShape: [2, 2, 1] }));
    model.add(tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.randomNormal({ seed: 3 }) }));
    const rand = lcg(4);
    const data = (count: number) => ({ images: Float32Array.from({ length: count * 4 }, () => rand()), labels: Uint8Array.from({ length: count }, (_, i) => i % 3) });
    let regenerated = 0;
    let progress = 0;
    // 1e-9 s: below any forward pass a machine can time (the floor is 5 of them).
    await assert.rejects(
      correct(model, data(6), data(12), { budgetSeconds: 1e-9, maxIterations: 5, delta: 1 }, {
        regenerate: async () => {
          regenerated++;
          return data(6);
        },
        onProgress: (e) => {
          if (e.kind !== 'start') progress++;
        },
      }),
      { name: 'RangeError', message: /^the time budget \(budgetSeconds, --budget-s: 1e-9 s\) is shorter than one iteration: .* over 12 clean images/ },
    );
    assert.equal(regenerated, 0);
    assert.equal(progress, 0, 'no iteration ran');
    model.dispose();
  });

  it('a budget with room runs every allowed round and says so', async () => {
    await initBackend();
    const model = tfl.sequential();
    model.add(tfl.layers.flatten({ inputShape: [2, 2, 1] }));
    model.add(tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.randomNormal({ seed: 5 }) }));
    const rand = lcg(6);
    const data = (count: number) => ({ images: Float32Array.from({ length: count * 4 }, () => rand()), labels: Uint8Array.from({ length: count }, (_, i) => i % 3) });
    const { result, model: corrected } = await correct(model, data(6), data(12), { budgetSeconds: 600, rounds: 3, maxIterations: 2, delta: 1 }, { regenerate: async () => data(3) });
    assert.deepEqual(result.rounds.map((r) => r.round), [1, 2, 3]);
    assert.equal(result.budget?.reason, 'rounds');
    assert.equal(result.adversarial.count, 12);
    corrected.dispose();
    model.dispose();
  });

  it('--budget-s sets budgetSeconds and, without --rounds, the round cap; bad values exit 2 before any work', async () => {
    const settingsOf = async (args: string[]) => {
      const cmd = new Command('correct').exitOverride();
      let flags: Record<string, unknown> = {};
      addCorrectionOptions(cmd).action((f: Record<string, unknown>) => {
        flags = f;
      });
      await cmd.parseAsync(args, { from: 'user' });
      return settingsFromFlags(flags, { model: 'm.json', out: 'out', dataset: 'mnist' } as never);
    };
    const budget = await settingsOf(['--budget-s', '90']);
    assert.equal(budget.options.budgetSeconds, 90);
    assert.equal(budget.options.rounds, BUDGET_MAX_ROUNDS);
    const both = await settingsOf(['--budget-s', '90', '--rounds', '3']);
    assert.equal(both.options.rounds, 3);
    const none = await settingsOf([]);
    assert.equal(none.options.budgetSeconds, undefined);
    assert.equal(none.options.rounds, 2);

    const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'lib', 'cli', 'main.js');
    for (const value of ['0', '-5', 'Infinity']) {
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [main, 'correct', '--model', 'm.json', '--out', 'x', '--budget-s', value], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (c) => resolve({ code: c, stderr: err }));
      });
      assert.equal(code, 2, value);
      assert.match(stderr, new RegExp(`expected a finite number of seconds > 0, got '${value}'`));
    }
  });

  it('advcorrect correct refuses a budget shorter than one iteration with exit 2, before writing or evaluating anything', async () => {
    await initBackend();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'advcorrect-budget-'));
    try {
      const modelDir = path.join(dir, 'model');
      const net = tfl.sequential();
      net.add(tfl.layers.flatten({ inputShape: [28, 28, 1] }));
      net.add(tfl.layers.dense({ units: 10, kernelInitializer: tfl.initializers.randomNormal({ seed: 8, stddev: 0.05 }) }));
      await saveModel(net, modelDir);
      net.dispose();
      const out = path.join(dir, 'out');
      const main = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'lib', 'cli', 'main.js');
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [main, 'correct', '--model', modelDir, '--out', out, '--budget-s', '0.000001', '--clean-size', '200'], { stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.on('close', (c) => resolve({ code: c, stderr: err }));
      });
      assert.equal(code, 2, stderr);
      assert.match(stderr, /the time budget \(budgetSeconds, --budget-s: 0\.000001 s\) is shorter than one iteration: .* over 200 clean images/);
      assert.doesNotMatch(stderr, /evaluating/, 'no evaluation started');
      assert.equal(existsSync(out), false, '--out was not created');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
