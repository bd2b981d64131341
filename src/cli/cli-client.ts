// What every API command shares: --api, --token-file and --json, the client built from them,
// output as a table or JSON, and exit codes that scripts can trust (docs/cli.md):
//   0 ok · 1 usage (bad arguments, refused input) · 2 not found · 3 conflict · 4 server or other
//   · 5 a host step failed (nbdfuse, losetup, mount, umount busy) · 6 a wait ran out of time.
import { join } from 'node:path';
import type { Command } from 'commander';
import { ApiClientError, defaultApiUrl, ShorthornClient } from '../api/client.ts';
import { apiTokenFileName, ApiTokenError, readApiToken } from '../api/api-token.ts';
import { HostError } from './host-error.ts';
import { WaitTimeoutError } from './volume-watch.ts';

export const ExitCode = { ok: 0, usage: 1, notFound: 2, conflict: 3, failure: 4, host: 5, timeout: 6 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The data directory `shorthorn up` uses when none is given: $SHORTHORN_DATA, else ./shorthorn-data. */
export const defaultDataDir = process.env['SHORTHORN_DATA'] ?? './shorthorn-data';

export interface ClientCommandOptions {
  readonly api: string;
  readonly tokenFile: string;
  readonly json?: boolean;
}

export class UsageError extends Error {}

/** Adds --api, --token-file and --json to a command that talks to the API. */
export function withClientOptions(command: Command): Command {
  return command
    .option('--api <url>', 'API address (env SHORTHORN_API)', process.env['SHORTHORN_API'] ?? defaultApiUrl)
    .option(
      '--token-file <path>',
      'file with the API token (env SHORTHORN_TOKEN_FILE)',
      process.env['SHORTHORN_TOKEN_FILE'] ?? join(defaultDataDir, apiTokenFileName),
    )
    .option('--json', 'print JSON for scripts instead of a table');
}

export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof UsageError) return ExitCode.usage;
  if (error instanceof WaitTimeoutError) return ExitCode.timeout;
  if (error instanceof HostError) {
    switch (error.code) {
      case 'refused':
        return ExitCode.usage;
      case 'already_set_up':
        return ExitCode.conflict;
      case 'timeout':
        return ExitCode.timeout;
      case 'tool_missing':
      case 'tool_failed':
      case 'busy':
      case 'bad_state':
        return ExitCode.host;
    }
  }
  if (error instanceof ApiClientError) {
    switch (error.code) {
      case 'not_found':
        return ExitCode.notFound;
      case 'conflict':
      case 'already_exists':
        return ExitCode.conflict;
      case 'bad_request':
      case 'invalid':
      case 'invalid_name':
      case 'read_only':
        return ExitCode.usage;
      default:
        return ExitCode.failure;
    }
  }
  return ExitCode.failure;
}

function hintFor(error: unknown, options: ClientCommandOptions): string | undefined {
  if (error instanceof HostError || error instanceof WaitTimeoutError) return error.hint;
  if (error instanceof ApiTokenError) return `pass --token-file with the api-token file from the API's data directory (tried ${options.tokenFile})`;
  if (!(error instanceof ApiClientError)) return undefined;
  switch (error.code) {
    case 'unreachable':
      return `is the API running there? start a cluster with \`shorthorn up --background\`, or pass --api URL`;
    case 'unauthorized':
      return `the token in ${options.tokenFile} is not this API's; pass --token-file DATA/api-token of the API's data directory`;
    default:
      return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof ApiClientError && error.problems.length > 0) {
    return `${error.message.split(':')[0] ?? error.message}:\n${error.problems.map((p) => `  ${p.path === '' ? '' : `${p.path}: `}${p.reason}`).join('\n')}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Run one command: build the client, run, print errors with a hint, set the exit code. */
export async function runClientCommand(
  options: ClientCommandOptions,
  body: (client: ShorthornClient, output: Output) => Promise<void>,
): Promise<void> {
  try {
    const token = await readApiToken(options.tokenFile);
    const client = new ShorthornClient({ baseUrl: options.api, token });
    await body(client, new Output(options.json === true));
  } catch (error) {
    const hint = hintFor(error, options);
    process.stderr.write(`shorthorn: error: ${describe(error)}\n${hint === undefined ? '' : `hint: ${hint}\n`}`);
    process.exitCode = exitCodeFor(error);
  }
}

/** Tables for people, JSON for scripts. */
export class Output {
  readonly json: boolean;
  constructor(json: boolean) {
    this.json = json;
  }

  /** Print `value` as JSON, or the table/lines `human` makes of it. */
  print(value: unknown, human: () => string): void {
    process.stdout.write(this.json ? `${JSON.stringify(value, null, 2)}\n` : human());
  }
}

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** `key: value` lines for one resource. */
export function details(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return `${pairs.map(([key, value]) => `${`${key}:`.padEnd(width + 2)}${value}`).join('\n')}\n`;
}

/** A count of seconds for --timeout. */
export function seconds(text: string, what: string): number {
  if (!/^[0-9]{1,6}$/.test(text) || Number(text) === 0) throw new UsageError(`${what} must be a whole number of seconds (1 to 999999), not ${JSON.stringify(text)}`);
  return Number(text);
}

export function onOff(text: string, what: string): boolean {
  if (text === 'on' || text === 'true') return true;
  if (text === 'off' || text === 'false') return false;
  throw new UsageError(`${what} must be on or off, not ${JSON.stringify(text)}`);
}
