// Reading a job or study spec from a file: JSON, or YAML (.yaml/.yml), which is easier to write
// by hand. The spec itself is validated later, by the workflows' own schema.
import fs from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CliError, exitCodes } from './errors.ts';

export async function readSpecFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read spec file ${file}: ${(err as Error).message}`, exitCodes.usage);
  }
  const yaml = /\.ya?ml$/i.test(file);
  try {
    return yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new CliError(
      `spec file ${file} is not valid ${yaml ? 'YAML' : 'JSON'}: ${(err as Error).message}` +
        (yaml ? '' : ' (name it .yaml to write it in YAML)'),
      exitCodes.usage,
    );
  }
}
