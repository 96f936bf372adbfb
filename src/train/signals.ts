/**
 * SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd, Kubernetes, CI runners) during a training run:
 * the loop finishes the step in flight, writes a resumable checkpoint and returns; the command then
 * exits 130 / 143 (signalExitCode). One implementation for the classification, MAE and YOLOS loops.
 */
import { constants } from 'node:os';

export type StopSignalName = 'SIGINT' | 'SIGTERM';

const FIRST = 'Interrupted: finishing the current step and writing a resumable checkpoint...';
const AGAIN = 'Still writing the checkpoint; it will be complete in a moment.';

/** The exit status of a run stopped by `sig`: 128 + its number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(sig: StopSignalName): number {
  return 128 + constants.signals[sig];
}

/**
 * Listens for SIGINT and SIGTERM (when `install`) until dispose(). The first signal says on `say` that
 * the run is stopping, a later one that the checkpoint is on its way; the loop sees `received` after
 * its step (pause() lets the event loop deliver a signal between steps that never wait on I/O).
 */
export class StopSignals {
  private count = 0;
  private sawTerm = false;
  private readonly onInt = (): void => this.got('SIGINT');
  private readonly onTerm = (): void => this.got('SIGTERM');
  constructor(private readonly say: (line: string) => void = () => {}, private readonly install = true) {
    if (install) {
      process.on('SIGINT', this.onInt);
      process.on('SIGTERM', this.onTerm);
    }
  }

  private got(sig: StopSignalName): void {
    this.count++;
    if (sig === 'SIGTERM') this.sawTerm = true;
    this.say(this.count === 1 ? FIRST : AGAIN);
  }

  /** a signal came */
  get received(): boolean { return this.count > 0; }

  /** which one decides the exit status (SIGTERM once one came), or undefined when none came */
  get name(): StopSignalName | undefined {
    return this.count === 0 ? undefined : this.sawTerm ? 'SIGTERM' : 'SIGINT';
  }

  /** For a run's result: whether a signal came and which one decides the exit status */
  outcome(): { signal: boolean; signalName?: StopSignalName } {
    const name = this.name;
    return name === undefined ? { signal: false } : { signal: true, signalName: name };
  }

  /** Yield to the event loop (unless a signal already came) so a pending signal is seen; returns received. */
  async pause(): Promise<boolean> {
    if (!this.received) await new Promise<void>((resolve) => setImmediate(resolve));
    return this.received;
  }

  dispose(): void {
    if (!this.install) return;
    process.removeListener('SIGINT', this.onInt);
    process.removeListener('SIGTERM', this.onTerm);
  }
}
