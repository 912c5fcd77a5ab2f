/**
 * Every relative link in README.md and docs/*.md resolves: to a file of the repository, and
 * when it has a `#fragment`, to a heading of that markdown file (GitHub's anchor rules). And
 * the README's quick-start example is examples/quick-start.ts, which CI runs.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The markdown outside fenced code blocks and inline code spans. */
function prose(markdown: string): string {
  return markdown
    .replace(/^```[\s\S]*?^```/gm, '')
    .replace(/`[^`\n]*`/g, '');
}

/** GitHub's heading anchor: lower-cased, punctuation dropped, spaces to `-`; repeats get -1, -2… */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const text = markdown.replace(/^```[\s\S]*?^```/gm, '');
  for (const m of text.matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const slug = m[1]!
      .replace(/<[^>]+>/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
    seen.set(slug, n + 1);
  }
  return anchors;
}

/** Relative link targets (links and images) in the prose of a markdown file. */
function relativeLinks(markdown: string): string[] {
  const targets = [...prose(markdown).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

describe('docs: relative links resolve', () => {
  it('finds the guides', () => assert.ok(files.length >= 8, files.join(', ')));

  for (const file of files) {
    it(file, () => {
      const markdown = readFileSync(join(root, file), 'utf8');
      const broken: string[] = [];
      for (const link of relativeLinks(markdown)) {
        const [path, fragment] = link.split('#') as [string, string | undefined];
        const target = path === '' ? join(root, file) : join(root, dirname(file), decodeURIComponent(path));
        if (!relative(root, target).startsWith('..') && existsSync(target)) {
          if (fragment !== undefined && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(fragment)) broken.push(`${link} (no such heading)`);
        } else {
          broken.push(`${link} (no such file)`);
        }
      }
      assert.deepEqual(broken, []);
    });
  }

  it('computes anchors as GitHub does', () => {
    assert.deepEqual(
      [...anchorsOf("# pg-consul\n## `patroni` — follow Patroni's leader key\n## Errors\n## Errors\n```\n# not a heading\n```\n### Differences from pg.Pool")],
      ['pg-consul', 'patroni--follow-patronis-leader-key', 'errors', 'errors-1', 'differences-from-pgpool'],
    );
  });
});

describe('docs: the README quick start is examples/quick-start.ts', () => {
  it('the first ```js block of README.md is the example file, verbatim', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /^```js\n([\s\S]*?)^```/m.exec(readme)?.[1];
    assert.equal(block, readFileSync(join(root, 'examples', 'quick-start.ts'), 'utf8'));
  });
});
