// The command line's window on the process, passed in so that commands run in tests without a subprocess.

export interface CliIo {
  writeOut(text: string): void;
  writeError(text: string): void;
  isStdinTty: boolean;
  /** Progress lines are for a person watching a terminal, not for logs. */
  isStderrTty?: boolean;
  stdin?: NodeJS.ReadableStream;
  exitCode: number;
}

export function processIo(): CliIo {
  return {
    writeOut: (text) => process.stdout.write(text),
    writeError: (text) => process.stderr.write(text),
    isStdinTty: Boolean(process.stdin.isTTY),
    isStderrTty: Boolean(process.stderr.isTTY),
    exitCode: 0,
  };
}
