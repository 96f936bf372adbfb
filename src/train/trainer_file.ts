/** Saving and loading a TrainerState as a .safetensors file (the Node side of trainer.ts). */
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { trainerStateFrom, trainerStateTensors, type TrainerState } from './trainer.js';

/** Write a TrainerState as safetensors (optimizer.exp_avg, optimizer.exp_avg_sq, ema; steps in the metadata). */
export function saveTrainerState(file: string, s: TrainerState, opts: { overwrite?: boolean } = {}): void {
  const { tensors, metadata } = trainerStateTensors(s);
  writeSafetensors(file, tensors, metadata, { overwrite: opts.overwrite ?? true });
}

export function loadTrainerState(file: string): TrainerState {
  return trainerStateFrom(readSafetensors(file), file);
}
