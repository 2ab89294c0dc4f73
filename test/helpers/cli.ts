/** Runs the built `advcorrect` CLI as a user would, in a child process. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../lib/native.js';

const execFileAsync = promisify(execFile);

/** The compiled CLI entry point. */
export const cliPath = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');

/** Exit code (−1 when killed by a signal), stdout and stderr of one CLI run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `advcorrect ...args` and returns how it ended; never throws for a non-zero exit. */
export async function runCli(...args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [cliPath, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
