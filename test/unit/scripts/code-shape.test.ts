import assert from 'node:assert/strict';
import { longFunctions } from '../../../scripts/code-shape.js';

/** A function named `name` whose text spans exactly `lines` lines. */
function fn(name: string, lines: number): string {
  return [`function ${name}(): number {`, ...Array.from({ length: lines - 3 }, (_, i) => `  const v${i} = ${i};`), '  return 0;', '}'].join('\n');
}

describe('scripts/code-shape: long functions', () => {
  it('reports a function over the limit with its line and length, not one at the limit', () => {
    const text = `${fn('atLimit', 5)}\n\n${fn('over', 6)}\n`;
    const found = longFunctions('x.ts', text, 5);
    assert.deepEqual(found.map((f) => [f.name, f.line, f.lines]), [['over', 7, 6]]);
  });

  it('names methods by their class, and arrow functions by where they stand', () => {
    const body = Array.from({ length: 4 }, (_, i) => `    const v${i} = ${i};`).join('\n');
    const text = [
      'class Box {',
      '  open(): void {',
      body,
      '  }',
      '}',
      'const handler = () => {',
      body,
      '};',
      'export function outer(): void {',
      '  setTimeout(() => {',
      body,
      '  });',
      '}',
    ].join('\n');
    const names = longFunctions('y.ts', text, 3).map((f) => f.name);
    assert.deepEqual(names, ['Box.open', 'handler', 'outer', 'outer > (arrow)']);
  });

  it('does not count the TSDoc above a function', () => {
    const text = `/**\n * Doc\n * more\n */\n${fn('short', 4)}\n`;
    assert.deepEqual(longFunctions('z.ts', text, 4), []);
  });
});
