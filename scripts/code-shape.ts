/**
 * Code-shape checker: lists the files in lib/ (outside the testing kit) longer than the file
 * limit, and every function, method, accessor, constructor or arrow function whose text spans
 * more lines than the function limit.
 *
 * Run: `npx tsx scripts/code-shape.ts [--max-file N] [--max-function N] [--strict] [DIR]`
 * (defaults: 400 and 60 lines, DIR = lib). A function's length counts the lines from its first
 * token (after its TSDoc) to its closing brace. With `--strict` the exit code is 1 when anything
 * is over a limit. Excluded: DIR/testing.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

/** A function longer than the limit. */
export interface Finding {
  readonly file: string;
  readonly line: number;
  readonly name: string;
  readonly lines: number;
}

function parseArgs(argv: readonly string[]): { maxFile: number; maxFunction: number; strict: boolean; dir: string } {
  let maxFile = 400;
  let maxFunction = 60;
  let strict = false;
  let dir = 'lib';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--max-file') maxFile = Number(argv[++i]);
    else if (arg === '--max-function') maxFunction = Number(argv[++i]);
    else if (arg === '--strict') strict = true;
    else if (arg !== undefined) dir = arg;
  }
  if (!Number.isInteger(maxFile) || !Number.isInteger(maxFunction)) {
    throw new TypeError('--max-file and --max-function take whole numbers');
  }
  return { maxFile, maxFunction, strict, dir };
}

function listSources(dir: string, excluded: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (path === excluded) continue;
    if (statSync(path).isDirectory()) out.push(...listSources(path, excluded));
    else if (entry.endsWith('.ts') && !entry.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

function nameOf(node: ts.Node, source: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name !== undefined) {
    const own = named.name.getText(source);
    const owner = node.parent;
    if (ts.isClassLike(owner) && owner.name !== undefined) return `${owner.name.text}.${own}`;
    return own;
  }
  if (ts.isConstructorDeclaration(node) && ts.isClassLike(node.parent)) {
    return `${node.parent.name?.text ?? '(class)'}.constructor`;
  }
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) {
    return parent.name.getText(source);
  }
  const kind = ts.isArrowFunction(node) ? 'arrow' : 'function expression';
  for (let up: ts.Node | undefined = parent; up !== undefined; up = up.parent) {
    if (isFunctionLike(up)) return `${nameOf(up, source)} > (${kind})`;
  }
  return `(${kind})`;
}

function isFunctionLike(node: ts.Node): node is ts.FunctionLikeDeclaration {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node) ||
    ts.isArrowFunction(node) ||
    ts.isFunctionExpression(node)
  );
}

/**
 * The functions, methods, accessors, constructors and arrow functions of one source text
 * that span more than `limit` lines (from their first token to their closing brace).
 *
 * @param file the name to report
 * @param text the TypeScript source
 * @param limit most lines allowed
 */
export function longFunctions(file: string, text: string, limit: number): Finding[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Finding[] = [];
  const visit = (node: ts.Node): void => {
    if (isFunctionLike(node) && node.body !== undefined) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > limit) found.push({ file, line: first + 1, name: nameOf(node, source), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function main(): void {
  const { maxFile, maxFunction, strict, dir } = parseArgs(process.argv.slice(2));
  const files = listSources(dir, join(dir, 'testing'));
  const longFiles: Array<{ file: string; lines: number }> = [];
  const functions: Finding[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    const shown = relative(process.cwd(), file);
    if (lines > maxFile) longFiles.push({ file: shown, lines });
    functions.push(...longFunctions(shown, text, maxFunction));
  }
  console.log(`${files.length} files read under ${dir}/ (testing kit excluded)`);
  console.log(`files over ${maxFile} lines: ${longFiles.length}`);
  for (const f of longFiles.sort((a, b) => b.lines - a.lines)) console.log(`  ${f.file}: ${f.lines} lines`);
  console.log(`functions over ${maxFunction} lines: ${functions.length}`);
  for (const f of functions.sort((a, b) => b.lines - a.lines)) {
    console.log(`  ${f.file}:${f.line} ${f.name}: ${f.lines} lines`);
  }
  if (strict && (longFiles.length > 0 || functions.length > 0)) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
