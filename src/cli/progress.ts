/** Training progress on a terminal: a bar on stderr (TTY only) and one summary line per epoch. */
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

// ---------------------------------------------------------------------------------------------
// the command

