/** imageProgress: the images-done bar of predict / embed / index / eval (TTY only). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { imageProgress } from '../../src/cli/progress.js';

/** a stream that records what is written to it; `isTTY` as given */
function fakeStream(isTTY: boolean): Writable & { isTTY: boolean; columns: number; text(): string } {
  const chunks: string[] = [];
  const s = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb(); } }) as Writable & { isTTY: boolean; columns: number; text(): string };
  s.isTTY = isTTY;
  s.columns = 120;
  s.text = () => chunks.join('');
  return s;
}

test('imageProgress on a TTY: label, images done / total and img/s', async () => {
  const s = fakeStream(true);
  const p = imageProgress('embed', s);
  p.update(0, 10);
  assert.match(s.text(), /embed \|.*\| 0\/10 images \| -- img\/s/);
  await new Promise((r) => setTimeout(r, 60));
  p.update(4, 10);
  p.stop();
  const out = s.text();
  assert.match(out, /embed \|.*\| 4\/10 images \| \d+ img\/s/);
  const ips = Number(/4\/10 images \| (\d+) img\/s/.exec(out)![1]);
  assert.ok(ips > 0 && ips < 4 / 0.05, `img/s ${ips}: 4 images in at least 60 ms`);
  assert.doesNotMatch(out, /\d+\/(?!10 )\d+ images/, 'the total stays 10');
  const before = out.length;
  p.update(5, 10); // after stop: nothing more
  p.stop();
  assert.equal(s.text().length, before);
});

test('imageProgress writes nothing when the stream is not a TTY', () => {
  const s = fakeStream(false);
  const p = imageProgress('predict', s);
  p.update(0, 3);
  p.update(3, 3);
  p.stop();
  assert.equal(s.text(), '');
});

test('imageProgress with nothing to do (total 0, e.g. index with every file unchanged) shows no bar', () => {
  const s = fakeStream(true);
  const p = imageProgress('index', s);
  p.update(0, 0);
  p.stop();
  assert.equal(s.text(), '');
});
