#!/usr/bin/env node
// wameter's entry point (npm's `bin`, `npm start`): holds SIGTERM and SIGINT before it loads the program
// (program.ts and every module it imports, about 0.4 s), so that a signal in that time stops `serve` cleanly
// instead of killing the process without a word (loading-signals.ts). Nothing of wameter but that tiny module
// is imported statically: an ES module's imports all load before its first line runs.

import { holdSignalsWhileLoading } from './loading-signals.js';

holdSignalsWhileLoading();
// For tests only (test/serve-process.test.ts): the signal named, sent to this process now, while the program
// loads, as a supervisor's would be; a test cannot otherwise send it at a known moment of the loading.
const testSignal = process.env.WAMETER_TEST_SIGNAL_WHILE_LOADING;
if (testSignal === 'SIGTERM' || testSignal === 'SIGINT') process.kill(process.pid, testSignal);
const { runAsEntryPoint } = await import('./program.js');
runAsEntryPoint();
