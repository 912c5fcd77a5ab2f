/**
 * Child-process entry of the soak (started by `runSoakInChild` with `--expose-gc`):
 * `soak-child.ts <options JSON> <result file>`. Writes the result, then simply returns: the
 * parent checks that the process exits by itself (no handle left open after `end()`).
 * @module
 */
import { rename, writeFile } from 'node:fs/promises';
import { runSoak } from './soak.js';
import type { SoakOptions } from './soak.js';

const [optionsJson, out] = process.argv.slice(2);
if (optionsJson === undefined || out === undefined) throw new Error('usage: soak-child.ts <options JSON> <result file>');
const options = JSON.parse(optionsJson) as SoakOptions;
const result = await runSoak(options, (line) => console.log(line));
await writeFile(`${out}.tmp`, JSON.stringify({ ...result, reportedAt: Date.now() }));
// Rename so the parent never reads a half-written file.
await rename(`${out}.tmp`, out);
