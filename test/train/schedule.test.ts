/** lr schedules against the closed form (the calibration recipe's LambdaLR), at chosen steps. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LrSchedule } from '../../src/train/schedule.js';
import { VitkitError } from '../../src/errors.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('cosine with linear warmup: values at chosen steps', () => {
  const s = new LrSchedule({ kind: 'cosine', lr: 2e-3, warmupSteps: 4, totalSteps: 20 });
  close(s.at(0), 2e-3 * 1 / 4);
  close(s.at(3), 2e-3);
  close(s.at(4), 2e-3);                                      // cos(0)
  close(s.at(12), 2e-3 * 0.5 * (1 + Math.cos(Math.PI * 8 / 16))); // halfway: base / 2
  close(s.at(12), 1e-3);
  close(s.at(19), 2e-3 * 0.5 * (1 + Math.cos(Math.PI * 15 / 16)));
  close(s.at(20), 0);
  close(s.at(25), 0);                                        // stays at the floor past the end
});

test('cosine equals the calibration recipe lambda for every step of a run', () => {
  const warm = 79, total = 30 * 79, base = 2e-3;
  const lambda = (s: number) => (s < warm ? (s + 1) / warm : 0.5 * (1 + Math.cos(Math.PI * (s - warm) / Math.max(1, total - warm))));
  const sch = new LrSchedule({ kind: 'cosine', lr: base, warmupSteps: warm, totalSteps: total });
  for (let s = 0; s < total; s += 37) close(sch.at(s), base * lambda(s));
  close(sch.at(total - 1), base * lambda(total - 1));
});

test('cosine with a floor and without warmup', () => {
  const s = new LrSchedule({ kind: 'cosine', lr: 1, totalSteps: 10, minLr: 0.1 });
  close(s.at(0), 1);
  close(s.at(5), 0.1 + 0.9 * 0.5);
  close(s.at(10), 0.1);
});

test('constant with and without warmup', () => {
  const a = new LrSchedule({ kind: 'constant', lr: 5e-4 });
  close(a.at(0), 5e-4); close(a.at(1000), 5e-4);
  const b = new LrSchedule({ kind: 'constant', lr: 5e-4, warmupSteps: 5 });
  close(b.at(0), 1e-4); close(b.at(2), 3e-4); close(b.at(4), 5e-4); close(b.at(99), 5e-4);
});

test('schedule options are validated', () => {
  assert.throws(() => new LrSchedule({ kind: 'cosine', lr: 1 }), VitkitError);
  assert.throws(() => new LrSchedule({ kind: 'linear' as 'cosine', lr: 1, totalSteps: 3 }), /'cosine' or 'constant'/);
  assert.throws(() => new LrSchedule({ kind: 'constant', lr: 1, warmupSteps: 1.5 }), /warmupSteps/);
});
