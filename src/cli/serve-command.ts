// `wameter serve`: runs the metering service (contract.md §5). Flags win over the --config file, the file
// over the environment. Exits 1 (EXIT.USAGE) with a list of what to fix when the configuration is wrong, 75
// when it stopped itself after losing the single-writer lock (a supervisor restarts it), 0 after SIGTERM.

import type { Command } from 'commander';
import { DB_SET_BY, loadServiceConfig } from '../server/config.js';
import { runUntilSignalled, type ServiceStop } from '../server/main.js';
import { CliError, EXIT } from './exit-codes.js';
import { keepRunningWhenOutputCloses, type CliIo } from './io.js';
import { releaseHeldSignals } from './loading-signals.js';
import { checkSqliteLocation } from './open-command-store.js';
import { databaseUrl, optionValue, pathArgument, refuseReportedFlag } from './options.js';

interface ServeFlags {
  db?: string;
  port?: string;
  host?: string;
  config?: string;
  logLevel?: string;
}

export function registerServeCommand(program: Command, io: CliIo): Command {
  const command = program.command('serve');
  refuseReportedFlag(command);
  return command
    .description('run the metering service: signed Meta webhooks in, the live bill out over an HTTP API')
    .option(
      '--db <url>',
      'database: sqlite:PATH (created if missing) or postgres://… (env WAMETER_DB / DATABASE_URL; default sqlite:./wameter.db)',
      databaseUrl,
    )
    .option(
      '--port <n>',
      'port to listen on, 0 = any free port (env PORT; default 8080)',
      optionValue('a port'),
    )
    .option(
      '--host <address>',
      'address to listen on (env WAMETER_HOST; default 0.0.0.0)',
      optionValue('an address'),
    )
    .option('--config <file>', 'JSON configuration file (see docs/service.md)', pathArgument)
    .option(
      '--log-level <level>',
      'debug, info, warn, error or silent (env WAMETER_LOG_LEVEL; default info)',
      optionValue('a log level'),
    )
    .addHelpText(
      'after',
      `
Settings from the environment (a --config file may hold the same as JSON):
  WAMETER_APP_SECRETS   Meta app secrets, comma-separated (none: every webhook POST is refused)
  WAMETER_VERIFY_TOKEN  token of Meta's GET handshake (none: the handshake is refused)
  WAMETER_API_KEYS      API keys and the WABAs each may read: key1=W1+W2,key2=* (none: /v1 refused)
  WAMETER_ACCOUNTS      accounts file (contract §2); WAMETER_RATE_CARDS rate card files/folders
  WAMETER_REPORTED_RULES  "off": rules only reported by third parties (PMP-2026-10) not applied (default on)
  WAMETER_BODY_LIMIT    largest request body in bytes (default 4194304)
  WAMETER_RATE_LIMIT    requests per second per client IP, "N", "N/BURST" or "off" (default 100/200);
                        on the webhook only failed POSTs count: Meta's signed deliveries are never limited
  WAMETER_MAX_CONNECTIONS  most connections open at once; beyond it new ones are closed unanswered
                        (default 10000; keep it under the process's open-files limit)

Examples:
  $ WAMETER_APP_SECRETS=… WAMETER_VERIFY_TOKEN=… WAMETER_API_KEYS='s3cret=*' wameter serve
  $ wameter serve --db postgres://wameter@127.0.0.1:5432/wameter --port 9000
  $ wameter serve --config /etc/wameter.json

Endpoints: Meta's webhooks come to GET and POST /webhooks/whatsapp: in the Meta app's WhatsApp webhook
settings give the callback URL https://YOUR-HOST/webhooks/whatsapp and the verify token of
WAMETER_VERIFY_TOKEN (Meta calls HTTPS only, and wameter serves HTTP: put a TLS reverse proxy in front).
The query API is under /v1 (an API key), the dashboard at / (docs/dashboard.md); GET /openapi.json
describes every endpoint; docs/service.md explains the security model and metrics.

Exit codes: 0 stopped by SIGTERM or SIGINT once in-flight requests were answered (while starting: once
the step under way ended, before listening); 1 not started (a setting
to fix, the port in use, a database that cannot be opened or migrated, another process rating it);
${EXIT.WRITER_LOCK_LOST} stopped itself, once in-flight requests were answered, because it lost the single-writer lock
(a PostgreSQL blip): restart it (systemd Restart=on-failure does). A log output (stdout) that breaks
stops the log, not the service: said once on stderr.`,
    )
    .action(async (flags: ServeFlags) => {
      const config = loadServiceConfig({
        flags: {
          ...(flags.db === undefined ? {} : { db: flags.db }),
          ...(flags.port === undefined ? {} : { port: flags.port }),
          ...(flags.host === undefined ? {} : { host: flags.host }),
          ...(flags.logLevel === undefined ? {} : { logLevel: flags.logLevel }),
        },
        env: process.env,
        ...(flags.config === undefined ? {} : { configFile: flags.config }),
      });
      if (!config.ok) {
        io.writeError(
          `wameter serve: the configuration needs fixing:\n  - ${config.error.problems.join('\n  - ')}\n`,
        );
        io.exitCode = EXIT.USAGE;
        return;
      }
      // stdout is the service's log from here on: its reader going away must not end the service.
      keepRunningWhenOutputCloses();
      try {
        // A SQLite file is created at start, but not its folder: say so before the start-up log.
        checkSqliteLocation(config.value.db, { mode: 'create', setBy: DB_SET_BY });
      } catch (error) {
        const reason = (error as Error).message;
        io.writeError(`wameter serve: ${error instanceof CliError ? reason : `cannot start: ${reason}`}\n`);
        io.exitCode = EXIT.USAGE;
        return;
      }
      // From here on every line is one of the service's JSON log lines (stdout): why it could not start or
      // stopped other than by a signal is logged there, not repeated on stderr in plain words — unless the
      // log is silent: then stderr says it, as before the log existed (a failed start is never wordless).
      const isLogSilent = config.value.logLevel === 'silent';
      let stop: ServiceStop;
      try {
        // A signal received while wameter loaded stops the start as one received now (main.ts).
        stop = await runUntilSignalled(config.value, { takeHeldSignal: releaseHeldSignals });
      } catch (error) {
        if (isLogSilent) io.writeError(`wameter serve: cannot start: ${(error as Error).message}\n`);
        io.exitCode = EXIT.USAGE;
        return;
      }
      if (isLogSilent && stop.code !== 'SIGNALLED')
        io.writeError(`wameter serve: stopped: ${stop.message}\n`);
      io.exitCode = stop.exitCode;
      // The store's connections are still open, waiting on a database that does not answer: they would
      // keep the process alive until it does.
      if (stop.code === 'STORE_NOT_CLOSED') process.exit(stop.exitCode);
    });
}
