/** `vitkit tokenize`: CLIP token ids of texts, each row padded to the context length. */
import { Command } from 'commander';
import { readJsonFile } from '../io/files.js';
import { VitkitError } from '../errors.js';
import { loadTokenizer } from '../node/text.js';
import { parseIntOpt } from './common.js';

interface TokenizeOpts {
  model?: string;
  json?: boolean;
  file?: string;
  contextLength?: number;
  layout?: string;
}

function readTexts(file: string): string[] {
  const v = readJsonFile(file, '--file');
  if (!Array.isArray(v)) throw new VitkitError(`Expected a JSON array of strings in ${file} but received ${v === null ? 'null' : typeof v}`);
  v.forEach((s, i) => {
    if (typeof s !== 'string') throw new VitkitError(`Expected a string for item ${i} of ${file} but received ${JSON.stringify(s)}`);
  });
  return v as string[];
}

export function tokenizeCommand(): Command {
  const cmd = new Command('tokenize')
    .description("CLIP token ids (open_clip's tokenizer; Hugging Face tokenizer files when the model has them), one row per text padded to the context length")
    .option('-m, --model <dir>', 'model directory with tokenizer.json, vocab.json + merges.txt or open_clip_config.json (default: the shipped OpenAI vocabulary, context 77), or a Hub repo org/name[@revision] (fetched into the Hugging Face cache)')
    .option('-f, --file <texts.json>', 'read the texts from a JSON array of strings (after any given as arguments)')
    .option('--context-length <n>', 'override the context length', parseIntOpt('--context-length', 2))
    .option('--layout <open_clip|hf>', "whose semantics when the directory has both: open_clip (zero padding; the default with open_clip_config.json) or hf (transformers' pad token)")
    .option('--json', 'print {"context_length", "pad_id", "input_ids": [[...], ...]} instead of one line of ids per text')
    .argument('[texts...]', 'texts to tokenize')
    .action((texts: string[], o: TokenizeOpts) => {
      const all = [...texts, ...(o.file !== undefined ? readTexts(o.file) : [])];
      if (texts.length === 0 && o.file === undefined) cmd.error('error: give texts to tokenize or --file texts.json', { exitCode: 2 });
      if (o.layout !== undefined && o.layout !== 'open_clip' && o.layout !== 'hf') {
        cmd.error(`error: Expected open_clip or hf for --layout but received ${JSON.stringify(o.layout)}`, { exitCode: 2 });
      }
      // the model's own context length bounds the override (its text tower has no positions beyond it)
      const own = loadTokenizer(o.model, o.layout !== undefined ? { layout: o.layout as 'open_clip' | 'hf' } : {}).contextLength;
      if (o.contextLength !== undefined && o.contextLength > own) {
        cmd.error(`error: Expected an integer in [2, ${own}] (the model's context length) for --context-length but received ${o.contextLength}`, { exitCode: 2 });
      }
      const tok = loadTokenizer(o.model, {
        ...(o.contextLength !== undefined ? { contextLength: o.contextLength } : {}),
        ...(o.layout !== undefined ? { layout: o.layout as 'open_clip' | 'hf' } : {}),
      });
      const { ids, shape } = tok.tokenize(all);
      const [B, L] = shape;
      const rows: number[][] = [];
      for (let b = 0; b < B; b++) rows.push(Array.from(ids.subarray(b * L, (b + 1) * L)));
      if (o.json) {
        process.stdout.write(JSON.stringify({ context_length: L, pad_id: tok.padId, input_ids: rows }) + '\n');
      } else {
        process.stdout.write(rows.map((r) => r.join(' ')).join('\n') + (rows.length ? '\n' : ''));
      }
    });
  return cmd;
}
