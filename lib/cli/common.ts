import { Command, CommanderError, InvalidArgumentError } from 'commander';

/** Option parsers for commander that reject junk with a message naming the expected form. */
export function parseFiniteNumber(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed)) throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return parsed;
}

export function parsePositiveNumber(value: string): number {
  const parsed = parseFiniteNumber(value);
  if (parsed <= 0) throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return parsed;
}

export function parseNonNegativeNumber(value: string): number {
  const parsed = parseFiniteNumber(value);
  if (parsed < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got '${value}'`);
  return parsed;
}

export function parsePositiveInteger(value: string): number {
  const parsed = parseFiniteNumber(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return parsed;
}

export function parseNonNegativeInteger(value: string): number {
  const parsed = parseFiniteNumber(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`expected an integer ≥ 0, got '${value}'`);
  return parsed;
}

/** A comma-separated list of numbers, e.g. "0.25,0.5,1". */
export function parseNumberList(value: string): number[] {
  return value.split(',').map((part) => parseFiniteNumber(part));
}

/** Prints one JSON document on stdout (the `--json` contract: nothing else goes to stdout). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** An L∞ radius in pixel units: a number in (0, 1]. */
export function parseEps(value: string): number {
  const parsed = parseFiniteNumber(value);
  if (parsed <= 0 || parsed > 1) throw new InvalidArgumentError(`expected ε in (0, 1] (pixel units), got '${value}'`);
  return parsed;
}

/** A comma-separated list of ε values, each in (0, 1]. */
export function parseEpsList(value: string): number[] {
  const list = value.split(',').map((part) => part.trim());
  for (const part of list) {
    const parsed = Number(part);
    if (part === '' || !Number.isFinite(parsed) || parsed <= 0 || parsed > 1) {
      throw new InvalidArgumentError(`expected ε values in (0, 1] (pixel units), got '${value}'`);
    }
  }
  return [...new Set(list.map(Number))];
}

/**
 * Makes commander's usage errors on `command` (unknown option, invalid argument, missing required
 * option) exit with code 2, help and version with 0.
 */
export function usageErrorsExitTwo(command: Command): Command {
  return command.exitOverride((error) => {
    if (error.exitCode === 0) throw error;
    throw new CommanderError(2, error.code, error.message);
  });
}
