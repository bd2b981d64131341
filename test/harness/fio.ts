// fio as a child process for the e2e tests: run a job, collect its output, and count the errors
// its JSON report gives per job (a verify failure is an error there, not only an exit code).
import { spawn } from 'node:child_process';

export interface FioResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runFio(args: readonly string[]): Promise<FioResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Sum of the jobs' error counts in fio's `--output-format=json` report. */
export function fioErrors(stdout: string): number {
  const json = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { jobs: { error: number }[] };
  return json.jobs.reduce((sum, job) => sum + job.error, 0);
}
