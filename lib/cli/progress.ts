/**
 * A one-line progress bar on stderr. On a terminal it redraws in place; elsewhere (CI, pipes)
 * it prints at most one line per `logEveryMs` so logs stay readable.
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastPrinted = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly options: { quiet?: boolean; logEveryMs?: number } = {},
  ) {}

  /** Shows `done` of `total`, with an optional detail text (loss, accuracy, ...). */
  update(done: number, detail = ''): void {
    if (this.options.quiet) return;
    const now = Date.now();
    const finished = done >= this.total;
    if (!this.tty && !finished && now - this.lastPrinted < (this.options.logEveryMs ?? 5000)) return;
    this.lastPrinted = now;
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const elapsed = (now - this.started) / 1000;
    const eta = fraction > 0 && !finished ? ` eta ${formatSeconds((elapsed / fraction) * (1 - fraction))}` : '';
    const line =
      `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ` +
      `${formatSeconds(elapsed)}${eta}${detail ? ` ${detail}` : ''}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}${finished ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  }

  /** Ends the bar (prints a newline on a terminal if the last update was not final). */
  finish(detail = ''): void {
    this.update(this.total, detail);
  }
}

export function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${String(Math.round(seconds - minutes * 60)).padStart(2, '0')}s`;
}
