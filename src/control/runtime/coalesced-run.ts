// One pass of a controller's "look at everything" at a time: a kick during a pass brings one more
// pass after it, however many kicks came, and none once the owner has stopped.
export class CoalescedRun {
  private readonly pass: () => Promise<void>;
  private readonly stopped: () => boolean;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(pass: () => Promise<void>, stopped: () => boolean) {
    this.pass = pass;
    this.stopped = stopped;
  }

  kick(): void {
    if (this.stopped()) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.pass();
      } while (this.again && !this.stopped());
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when no pass runs (its failure, if any, rejects it). */
  async idle(): Promise<void> {
    await this.running;
  }
}
