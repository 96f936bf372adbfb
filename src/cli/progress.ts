/**
 * Progress on a terminal: training's bar on stderr (TTY only) and one summary line per epoch, and
 * the images-done bar of the commands that run a model over image files (predict, embed, index, eval).
 */
import cliProgress from 'cli-progress';
import type { EpochMetrics, ProgressSink } from '../train/loop.js';

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export function epochLine(m: EpochMetrics, epochs: number): string {
  const parts = [`epoch ${m.epoch}/${epochs}`, `train_loss ${m.train_loss.toFixed(4)}`];
  if (m.val_loss !== null) parts.push(`val_loss ${m.val_loss.toFixed(4)}`);
  if (m.val_acc !== null) parts.push(`val_acc ${m.val_acc.toFixed(2)}%`);
  if (m.val_top5 !== null) parts.push(`top5 ${m.val_top5.toFixed(2)}%`);
  if (m.val_acc_ema !== undefined && m.val_acc_ema !== null) parts.push(`ema_acc ${m.val_acc_ema.toFixed(2)}%`);
  parts.push(`lr ${m.lr.toExponential(2)}`, `${m.seconds.toFixed(1)}s`, `${Math.round(m.img_s)} img/s`);
  return parts.join('  ');
}

/** cli-progress bar on stderr (TTY only) plus one summary line per epoch on stdout. */
export function barProgress(log: (s: string) => void = (s) => console.log(s)): ProgressSink {
  const bar = new cliProgress.SingleBar({
    format: 'epoch {epoch} |{bar}| {value}/{total} | loss {loss} | lr {lr} | {ips} img/s | left {left}',
    hideCursor: true, clearOnComplete: true, barsize: 24, etaBuffer: 50, fps: 8,
  }, cliProgress.Presets.shades_classic);
  let active = false;
  let epochLabel = '';
  return {
    epochStart(epoch, epochs, total, done) {
      epochLabel = `${epoch}/${epochs}`;
      bar.start(total, done, { epoch: epochLabel, loss: '--', lr: '--', ips: '--', left: '--' });
      active = true;
    },
    step(s) {
      bar.update(s.done, { epoch: epochLabel, loss: Number.isFinite(s.loss) ? s.loss.toFixed(4) : '--', lr: s.lr.toExponential(2), ips: Math.round(s.imgPerSec), left: fmtDuration(s.etaSeconds) });
    },
    epochEnd(m, epochs) {
      if (active) bar.stop();
      active = false;
      log(epochLine(m, epochs));
    },
    message(line) {
      if (active) process.stderr.write('\n');
      console.error(line);
    },
  };
}

/** Reports images done of a total; the first call starts the bar. */
export type ImageProgressFn = (done: number, total: number) => void;

export interface ImageProgress {
  /** pass this to the computation: (images done, images in all) */
  readonly update: ImageProgressFn;
  /** clears the bar (call it however the computation ends) */
  stop(): void;
}

/**
 * A bar "<label> |████░░| done/total images | N img/s" on `stream` (default stderr) when it is a
 * TTY; nothing at all otherwise (pipes, files, tests see no change). img/s counts from the first
 * update (the model loaded, the first batch about to run).
 */
export function imageProgress(label: string, stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): ImageProgress {
  if (stream.isTTY !== true) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar({
    stream, format: `${label} |{bar}| {value}/{total} images | {ips} img/s`,
    hideCursor: false, clearOnComplete: true, barsize: 24, fps: 8,
  }, cliProgress.Presets.shades_classic);
  let t0 = 0;
  let active = false, stopped = false;
  return {
    update(done, total) {
      if (stopped) return;
      if (!active) {
        if (total <= 0) return;
        t0 = performance.now();
        bar.start(total, done, { ips: '--' });
        active = true;
        return;
      }
      const s = (performance.now() - t0) / 1000;
      bar.update(done, { ips: s > 0 ? Math.round(done / s) : '--' });
    },
    stop() {
      if (active) bar.stop();
      active = false;
      stopped = true;
    },
  };
}
