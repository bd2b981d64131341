// A process's last line of defence: an assertion or an unhandled rejection is logged with its
// stack and the process exits non-zero, so a supervisor restarts it on a known state.

export function installLastResortHandlers(): void {
  process.on('uncaughtException', (error) => {
    process.stderr.write(`shorthorn: fatal: ${error.stack ?? String(error)}\n`);
    process.exit(70);
  });
  process.on('unhandledRejection', (reason) => {
    const text = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    process.stderr.write(`shorthorn: fatal: unhandled rejection: ${text}\n`);
    process.exit(70);
  });
}
