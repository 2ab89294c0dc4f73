/** The CLI's RunIo: log lines and progress bars on stderr (none with --quiet or --json's quiet). */
import type { BackendRequest } from '../backend/index.js';
import type { RunIo } from '../runs/index.js';
import { ProgressBar, formatSeconds } from './progress.js';

export function cliRunIo(flags: Record<string, unknown>, resume = false): RunIo {
  const quiet = Boolean(flags.quiet);
  return {
    json: Boolean(flags.json),
    quiet,
    resume,
    ...(flags.backend ? { backend: flags.backend as BackendRequest } : {}),
    evaluationProgress: (what) => {
      let bar: ProgressBar | undefined;
      let stage = '';
      return ({ stage: st, done, total }) => {
        if (quiet) return;
        if (st !== stage || !bar) {
          stage = st;
          bar = new ProgressBar(`eval ${what} ${st}`, total, { logEveryMs: 10000 });
        }
        bar.update(done);
      };
    },
    correctionProgress: (total) => {
      const bar = new ProgressBar('correct', total, { quiet, logEveryMs: 0 });
      return {
        update: (e) => {
          if (e.kind !== 'iteration') return;
          bar.update(
            (e.round - 1) * e.maxIterations + e.iteration,
            `r${e.round} cuts ${e.cutsTotal} QP ${e.qpStatus === 'solved' ? '' : `${e.qpStatus} `}${e.qpTimeMs.toFixed(0)}ms α ${e.alpha} V ${e.violation.toFixed(3)} wrong ${e.misclassified} L ${e.cleanLoss.toFixed(4)}${e.feasible ? '' : '>η'} ‖w−w₀‖ ${e.distance.toFixed(4)}`,
          );
        },
        finish: (result) => bar.finish(`${result.iterations.length} iterations, ${formatSeconds(result.totalTimeMs / 1000)}`),
      };
    },
  };
}
