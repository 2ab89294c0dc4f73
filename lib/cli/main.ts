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

// Each command module adds its subcommands; one line per module.
const commandModules: Array<() => Promise<{ register(program: Command): void }>> = [
  () => import('./eval.js'),
  () => import('./attack.js'),
  () => import('./data.js'),
  () => import('./qp.js'),
  () => import('./train.js'),
  () => import('./correct.js'),
];

async function main(): Promise<void> {
  for (const load of commandModules) (await load()).register(program);
  await program.parseAsync(process.argv);
}

main().catch((error: unknown) => {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
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
