// A one-line progress bar on stderr for long waits (backup, restore): redrawn in place on a
// terminal; elsewhere (a script, a CI log) one line per change of at least 10%, so logs stay
// short. Never on stdout: that carries the result (and the JSON with --json).
export class ProgressBar {
  private readonly label: string;
  private readonly tty: boolean;
  private lastLogged = -10;
  private drawn = false;

  constructor(label: string, stream: { isTTY?: boolean } = process.stderr) {
    this.label = label;
    this.tty = stream.isTTY === true;
  }

  /** The bar for `percent` (0–100) with a short state word; pure, for tests. */
  static render(label: string, percent: number, state: string, width = 30): string {
    const p = Math.max(0, Math.min(100, Math.floor(percent)));
    const filled = Math.round((p / 100) * width);
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(p).padStart(3)}% ${state}`;
  }

  update(percent: number, state: string): void {
    const line = ProgressBar.render(this.label, percent, state);
    if (this.tty) {
      process.stderr.write(`\r${line}\u001b[K`);
      this.drawn = true;
    } else if (percent >= this.lastLogged + 10 || percent >= 100) {
      this.lastLogged = percent;
      process.stderr.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.drawn) process.stderr.write('\n');
    this.drawn = false;
  }
}
