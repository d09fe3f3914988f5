/**
 * The publishes `ferry pub` keeps in flight for `--count` runs and stdin lines. The first failure
 * stops the run: nothing more is sent, the publishes already sent are awaited, and that one error
 * is thrown once (every later publish of a run to an unknown topic fails the same way, and a
 * rejection nobody awaited would end the process with a stack trace).
 */
export class PublishWindow {
  private readonly inFlight = new Set<Promise<void>>();
  private firstFailure: { error: unknown } | null = null;

  constructor(
    /** Publishes kept in flight at once. */
    private readonly sizeMax: number,
    private readonly onPublished: () => void = () => undefined,
  ) {}

  /** A publish failed: send no more. */
  get failed(): boolean {
    return this.firstFailure !== null;
  }

  /** Tracks one publish; resolves once there is room for the next one. */
  async add(sent: Promise<unknown>): Promise<void> {
    const tracked: Promise<void> = sent.then(
      () => this.onPublished(),
      (error: unknown) => {
        this.firstFailure ??= { error };
      },
    );
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    if (this.inFlight.size >= this.sizeMax) await Promise.race(this.inFlight);
  }

  /** Waits for every publish sent; throws the first failure, if any. */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.firstFailure !== null) throw this.firstFailure.error;
  }
}
