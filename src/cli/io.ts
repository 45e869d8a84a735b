// The command line's window on the process, passed in so that commands run in tests without a subprocess.

export interface CliIo {
  writeOut(text: string): void;
  writeError(text: string): void;
  isStdinTty: boolean;
  stdin?: NodeJS.ReadableStream;
  exitCode: number;
}

export function processIo(): CliIo {
  return {
    writeOut: (text) => process.stdout.write(text),
    writeError: (text) => process.stderr.write(text),
    isStdinTty: Boolean(process.stdin.isTTY),
    exitCode: 0,
  };
}
