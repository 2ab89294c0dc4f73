import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ARCH_NAMES, type ArchName } from '../models/architectures.js';

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

/**
 * Keeps a flag that a release renamed from being accepted or reported as merely unknown: `old`
 * stays a hidden option of `command` (with an optional value), and giving it stops the command
 * before its action with the one line "OLD was renamed NOW" (a TypeError: exit 2).
 */
export function renamedFlag(command: Command, old: string, now: string): Command {
  const option = new Option(`${old} [value]`).hideHelp();
  command.addOption(option);
  command.hook('preAction', (thisCommand) => {
    if (thisCommand.getOptionValue(option.attributeName()) !== undefined) throw new TypeError(`${old} was renamed ${now}`);
  });
  return command;
}

/** What `--model` takes, in every command's help. */
export const MODEL_HELP = 'tfjs model.json (or its directory), a PyTorch .npz with --arch, or an ONNX file (.onnx, from torch.onnx.export)';

/** `--input-scale`: an ONNX model's pixel range [0, s] (1 = pixels in [0, 1]). */
export function parseInputScale(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number (e.g. 1 or 255), got '${value}'`);
  return n;
}

/** The flags of {@link addModelOptions} after parsing. */
export interface ModelFlags {
  model?: string;
  arch?: ArchName;
  bnStats?: string;
  inputScale?: number;
}

/**
 * Declares the model flags every model command shares: --model, --arch, --bn-stats and
 * --input-scale (ONNX). `required` makes --model a required option.
 */
export function addModelOptions(command: Command, required: boolean): Command {
  if (required) command.requiredOption('--model <path>', MODEL_HELP);
  else command.option('--model <path>', MODEL_HELP);
  return command
    .option('--arch <arch>', `architecture of an .npz model (${ARCH_NAMES.join(', ')})`, parseArch)
    .option('--bn-stats <file>', 'BatchNorm statistics .npz of a ResNet8 .npz (default: *_bn_stats.npz beside it)')
    .option('--input-scale <s>', 'ONNX models: the network takes pixels in [0, s] (default 1; 255 for a model trained on raw bytes)', parseInputScale);
}

/** loadModel() options from {@link ModelFlags}. */
export function modelLoadOptions(flags: ModelFlags): { arch?: ArchName; bnStats?: string; inputScale?: number } {
  return {
    ...(flags.arch ? { arch: flags.arch } : {}),
    ...(flags.bnStats ? { bnStats: flags.bnStats } : {}),
    ...(flags.inputScale !== undefined ? { inputScale: flags.inputScale } : {}),
  };
}

/** Prints what the loader wants the user to know (e.g. an ONNX softmax left out, normalisation taken out of the graph). */
export function printModelNotices(loaded: { notices?: string[] }, quiet = false): void {
  if (quiet) return;
  for (const notice of loaded.notices ?? []) process.stderr.write(`advcorrect: note: ${notice}\n`);
}

export function parseArch(value: string): ArchName {
  if (!(ARCH_NAMES as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${ARCH_NAMES.join(', ')}, got '${value}'`);
  return value as ArchName;
}
