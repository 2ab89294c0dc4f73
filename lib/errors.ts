/**
 * Codes of {@link AdvcorrectError}: one per kind of failure a caller may want to tell apart
 * (docs/errors.md lists them with the CLI's exit codes).
 */
export type AdvcorrectErrorCode =
  | 'ERR_NATIVE_MISSING'
  | 'ERR_NATIVE'
  | 'ERR_ABORTED'
  | 'ERR_PARSE'
  | 'ERR_DATA'
  | 'ERR_MODEL'
  | 'ERR_BACKEND'
  | 'ERR_UNSUPPORTED'
  | 'ERR_IO'
  | 'ERR_NO_MEMORY'
  | 'ERR_TOO_LARGE'
  | 'ERR_NON_FINITE'
  | 'ERR_DISPOSED'
  /** An ONNX file that cannot be imported: malformed, unsupported operator or attribute, unresolvable shapes. */
  | 'ERR_ONNX';

/**
 * The one error class for failures that are not a caller's argument mistake
 * (those are TypeError/RangeError): native failures, unreadable files, unsupported models.
 */
export class AdvcorrectError extends Error {
  readonly code: AdvcorrectErrorCode;

  constructor(code: AdvcorrectErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdvcorrectError';
    this.code = code;
  }
}

/** The error an aborted operation rejects with; carries the signal's reason as its cause. */
export function abortError(signal: AbortSignal): AdvcorrectError {
  return new AdvcorrectError('ERR_ABORTED', 'The operation was aborted', { cause: signal.reason });
}

/**
 * Refuses option keys that a release renamed, so that an old spelling is never silently
 * ignored: `renamed` maps each old key to its new one, and the first old key that `options`
 * gives a value (not undefined) throws `TypeError: options.eps was renamed options.tolerance`
 * (with `prefix` in place of "options").
 */
export function rejectRenamedKeys(options: object, renamed: Readonly<Record<string, string>>, prefix = 'options'): void {
  for (const [old, now] of Object.entries(renamed)) {
    if ((options as Record<string, unknown>)[old] !== undefined) throw new TypeError(`${prefix}.${old} was renamed ${prefix}.${now}`);
  }
}
