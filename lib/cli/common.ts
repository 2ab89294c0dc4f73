import { InvalidArgumentError } from 'commander';

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
