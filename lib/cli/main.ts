#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';
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

main().catch((error: unknown) => {
  if (error instanceof CommanderError) {
    // A bad command line (unknown option, invalid value, missing argument) exits with 2 like the
    // argument errors below; help and version keep commander's own codes.
    const usage = error.exitCode === 1 && !['commander.help', 'commander.helpDisplayed', 'commander.version'].includes(error.code);
    process.exitCode = usage ? 2 : error.exitCode;
    return;
  }
  if (error instanceof AdvcorrectError) {
    process.stderr.write(`advcorrect: ${error.message}\n`);
    process.exitCode = error.code === 'ERR_ABORTED' ? 130 : 1;
    return;
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    process.stderr.write(`advcorrect: ${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`advcorrect: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exitCode = 1;
});
