/**
 * The image options every command that reads images shares: --window (DICOM / 16-bit gray display
 * window) and --frame (one frame of a multi-frame DICOM file). They set io/medical.ts's process-wide
 * defaults before the command runs, so every image path (predict, embed, explain, fewshot, zeroshot,
 * train/eval folders, run --image) reads medical images the same way.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { parseWindow, WINDOW_PRESETS, type WindowSpec } from '../io/window.js';
import { setMedicalDefaults } from '../io/medical.js';

function windowArg(v: string): WindowSpec {
  try {
    return parseWindow(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function frameArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`Expected --frame as an integer >= 0 but received ${JSON.stringify(v)}`);
  return n;
}

/** Add --window and --frame to `cmd` and apply them before its action. */
export function imageOptions(cmd: Command): Command {
  return cmd
    .option('--window <c,w|preset|minmax>', `DICOM / 16-bit gray display window: center,width, minmax, or ${Object.keys(WINDOW_PRESETS).join(', ')} (default: the file's own window, else minmax; 16-bit PNG/TIFF: v / 65535)`, windowArg)
    .option('--frame <k>', 'frame k (from 0) of multi-frame DICOM files', frameArg)
    .hook('preAction', (_this, action) => {
      const o = action.opts() as { window?: WindowSpec; frame?: number };
      setMedicalDefaults({ window: o.window, frame: o.frame });
    });
}
