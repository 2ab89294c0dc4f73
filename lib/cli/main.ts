#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';
import { fsReason } from '../util/files.js';
import { packageRoot } from '../native.js';

const { version } = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };

const program = new Command()
  .name('advcorrect')
  .description('Make an image classifier robust by adversary correction, and solve the QPs behind it')
  .version(version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

type CommandModule = { register(program: Command): void };

// Each module registers the commands named here. Only the module of the command being run is
// imported (the tensor commands load TensorFlow.js, which costs seconds); --help loads them all.
const commandModules: Record<string, () => Promise<CommandModule>> = {
  demo: () => import('./demo.js'),
  correct: () => import('./correct.js'),
  baseline: () => import('./baseline.js'),
  compare: () => import('./compare.js'),
  eval: () => import('./eval.js'),
  attack: () => import('./attack.js'),
  train: () => import('./train.js'),
  data: () => import('./data.js'),
  qp: () => import('./qp.js'),
};

async function main(): Promise<void> {
  const requested = process.argv[2];
  const loaders = requested !== undefined && Object.hasOwn(commandModules, requested)
    ? [commandModules[requested]]
    : [...new Set(Object.values(commandModules))];
  const modules = new Set(await Promise.all(loaders.map((load) => load())));
  for (const module of modules) module.register(program);
  await program.parseAsync(process.argv);
}

/**
 * Exit statuses (docs/errors.md): 0 success; 1 a failure (AdvcorrectError: unreadable or malformed
 * input, native failure, out of memory, …); 2 bad arguments (commander's usage errors, TypeError,
 * RangeError, ERR_ONNX); 130 interrupted (ERR_ABORTED, Ctrl-C). `qp solve` adds one code per solver status.
 */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

/** A Node fs/system error (ENOTDIR, EACCES, ENOSPC, …) that no helper turned into an AdvcorrectError. */
function systemErrorMessage(error: unknown): string | undefined {
  const e = error as NodeJS.ErrnoException;
  if (!(e instanceof Error) || typeof e.code !== 'string' || !/^E[A-Z]+$/.test(e.code) || typeof e.syscall !== 'string') return undefined;
  return e.path ? `cannot ${e.syscall} ${e.path}: ${fsReason(e)}` : `${e.syscall} failed: ${fsReason(e)}`;
}

main().catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // A bad command line (unknown option, invalid value, missing argument) exits with 2 like the
    // argument errors below; help and version keep commander's own codes.
    const usage = error.exitCode === 1 && !['commander.help', 'commander.helpDisplayed', 'commander.version'].includes(error.code);
    process.exitCode = usage ? EXIT_USAGE : error.exitCode;
    return;
  }
  if (error instanceof AdvcorrectError) {
    process.stderr.write(`advcorrect: ${error.message}\n`);
    // ERR_ONNX is a bad --model file (an input mistake, like a bad argument): exit 2
    process.exitCode = error.code === 'ERR_ABORTED' ? EXIT_INTERRUPTED : error.code === 'ERR_ONNX' ? EXIT_USAGE : EXIT_FAILURE;
    return;
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    process.stderr.write(`advcorrect: ${error.message}\n`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  const system = systemErrorMessage(error);
  if (system !== undefined) {
    process.stderr.write(`advcorrect: ${system}\n`);
    process.exitCode = EXIT_FAILURE;
    return;
  }
  process.stderr.write(`advcorrect: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = EXIT_FAILURE;
});
