/** The vitkit command line. Every command has --help; user errors print one line and exit 1. */
import { Command, CommanderError } from 'commander';
import { UsageError, VitkitError } from '../errors.js';
import { parseIntOpt } from './common.js';
import { setNativeThreads } from '../backend/native.js';
import { closeDevices, onDevice } from '../backend/devices.js';
import '../backend/index.js'; // registers the native backend as the default
import { predictCommand } from './predict.js';
import { runCommand } from './run.js';
import { infoCommand } from './info.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { demoCommand } from './demo.js';
import { explainCommand } from './explain.js';
import { embedCommand } from './embed.js';
import { fewshotCommand } from './fewshot.js';
import { tokenizeCommand } from './tokenize.js';
import { packageVersion } from './version.js';
import { downloadCommand } from './download.js';
import { zeroshotCommand } from './zeroshot.js';
import { indexCommand } from './index_cmd.js';
import { searchCommand } from './search.js';
import { detectCommand } from './detect.js';
import { reconstructCommand } from './reconstruct.js';
import { exportCommand } from './export.js';
import { resolveModelDir } from '../hub/resolve.js';

export function buildProgram(): Command {
  const program = new Command('vitkit')
    .description('Vision Transformers for TypeScript: inference, training and explanation with timm / Hugging Face parity')
    .version(packageVersion(), '-V, --version', 'print the vitkit version')
    .option('-t, --threads <n>', 'native threads (default: all cores; or VITKIT_THREADS)', parseIntOpt('--threads'))
    .hook('preAction', (cmd) => {
      const t = cmd.opts()['threads'] as number | undefined;
      if (t !== undefined) {
        setNativeThreads(t); // applied now if the addon is loaded, else when it loads
        process.env['VITKIT_THREADS'] = String(t); // for worker threads that load the addon themselves
      }
    })
    // --model org/name[@rev] or hf-hub:org/name (or info's <model>): fetched into the Hugging Face cache, replaced by its directory
    .hook('preAction', async (_p, cmd) => {
      const m = cmd.getOptionValue('model') as unknown;
      if (typeof m === 'string') cmd.setOptionValue('model', await resolveModelDir(m));
      const i = cmd.registeredArguments.findIndex((a) => a.name() === 'model');
      if (i >= 0 && typeof cmd.processedArgs[i] === 'string') cmd.processedArgs[i] = await resolveModelDir(cmd.processedArgs[i] as string);
    });
  program.addCommand(predictCommand());
  program.addCommand(runCommand());
  program.addCommand(infoCommand());
  program.addCommand(trainCommand());
  program.addCommand(evalCommand());
  program.addCommand(demoCommand());
  program.addCommand(explainCommand());
  program.addCommand(embedCommand());
  program.addCommand(fewshotCommand());
  program.addCommand(tokenizeCommand());
  program.addCommand(downloadCommand());
  program.addCommand(zeroshotCommand());
  program.addCommand(indexCommand());
  program.addCommand(searchCommand());
  program.addCommand(detectCommand());
  program.addCommand(reconstructCommand());
  program.addCommand(exportCommand());
  // commander's own usage errors go through console.error like ours (one line on stderr, exit 2)
  const output = { outputError: (str: string) => console.error(str.trimEnd()) };
  program.exitOverride().configureOutput(output);
  for (const c of program.commands) c.exitOverride().configureOutput(output);
  return program;
}

/** Runs the CLI; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  // every command that runs a model names its device once, on stderr (stdout stays the command's output)
  const said = new Set<string>();
  const stopListening = onDevice((d, role) => {
    const line = `device: ${d.description}${role ? ` (${role})` : ''}`;
    if (said.has(line)) return;
    said.add(line);
    console.error(line);
  });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof VitkitError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    const err = e as Error;
    console.error(`error: ${err.message ?? String(e)}`);
    if (process.env['VITKIT_DEBUG']) console.error(err.stack);
    return 1;
  } finally {
    stopListening();
    await closeDevices(); // a process that used the GPU exits by itself
  }
}
