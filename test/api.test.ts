// The public API and its documentation stay in step:
//   - every `import { … } from 'advcorrect…'` in README.md and docs/**/*.md names an entry of
//     package.json `exports` and only names that entry exports (so the docs' code runs);
//   - docs/api.md documents exactly the names lib/index.ts exports;
//   - the entries themselves: explicit names only, what the .d.ts says is what the module has.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { packageRoot } from '../lib/native.js';

const PACKAGE = 'advcorrect';
const root = packageRoot;

interface EntryFiles {
  types: string;
  import: string;
}

function packageExports(): Map<string, EntryFiles> {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
  assert.equal(pkg.name, PACKAGE);
  const entries = new Map<string, EntryFiles>();
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue; // ./package.json
    const t = target as Partial<EntryFiles>;
    assert.ok(t.types && t.import, `exports['${subpath}'] needs both "types" and "import"`);
    entries.set(subpath, { types: t.types, import: t.import });
  }
  return entries;
}

/** Names an ES module source exports by `export { … }` lists, with whether each is type-only. */
function exportLists(file: string): { names: Map<string, 'type' | 'value'>; starExports: number } {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const names = new Map<string, 'type' | 'value'>();
  let starExports = 0;
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement)) {
      const clause = statement.exportClause;
      if (!clause || !ts.isNamedExports(clause)) {
        starExports++;
        continue;
      }
      for (const element of clause.elements) {
        const typeOnly = statement.isTypeOnly || element.isTypeOnly;
        names.set(element.name.text, typeOnly ? 'type' : 'value');
      }
    } else if (ts.canHaveModifiers(statement) && ts.getModifiers(statement)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) {
      // `export declare const x`, `export type T = …` in a .d.ts: count them too.
      const named = statement as ts.Statement & { name?: ts.Identifier };
      if (named.name) names.set(named.name.text, ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement) ? 'type' : 'value');
      else starExports++;
    }
  }
  return { names, starExports };
}

function markdownFiles(): string[] {
  const files = [path.join(root, 'README.md')];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.md')) files.push(full);
    }
  };
  walk(path.join(root, 'docs'));
  return files;
}

interface DocImport {
  file: string;
  line: number;
  specifier: string;
  names: string[];
}

/** `import … from 'advcorrect…'` statements inside the fenced code blocks of a Markdown file. */
function docImports(file: string): DocImport[] {
  const text = readFileSync(file, 'utf8');
  const out: DocImport[] = [];
  const fence = /^```[^\n]*\n([\s\S]*?)^```/gm;
  for (let block = fence.exec(text); block; block = fence.exec(text)) {
    const code = block[1];
    const statement = /import\s+(type\s+)?([^;'"]*?)\s+from\s+['"]([^'"]+)['"]/g;
    for (let m = statement.exec(code); m; m = statement.exec(code)) {
      const specifier = m[3];
      if (specifier !== PACKAGE && !specifier.startsWith(`${PACKAGE}/`)) continue;
      const clause = m[2];
      const braces = /\{([^}]*)\}/.exec(clause);
      const names = braces
        ? braces[1]
            .split(',')
            .map((part) => part.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0].trim())
            .filter((name) => name.length > 0)
        : [];
      const offset = block.index + block[0].indexOf(code) + m.index;
      out.push({ file: path.relative(root, file), line: text.slice(0, offset).split('\n').length, specifier, names });
    }
  }
  return out;
}

/** Names docs/api.md documents: `### \`name…\`` headings and `- **\`Name\`**` lines, before "Changed in 0.2.0". */
function documentedNames(): Map<string, number> {
  const text = readFileSync(path.join(root, 'docs', 'api.md'), 'utf8');
  const body = text.split(/^## Changed in 0\.2\.0/m)[0];
  const names = new Map<string, number>();
  body.split('\n').forEach((line, i) => {
    const heading = /^#{3,4} `(?:new |class )?([A-Za-z_$][\w$]*)/.exec(line);
    const item = /^- \*\*`([A-Za-z_$][\w$]*)`\*\*/.exec(line);
    const name = heading?.[1] ?? item?.[1];
    if (!name) return;
    assert.ok(!names.has(name), `docs/api.md:${i + 1} documents ${name} a second time (first at line ${names.get(name)})`);
    names.set(name, i + 1);
  });
  return names;
}

describe('public API', function () {
  this.timeout(120_000); // importing the main entry loads TensorFlow.js
  const entries = packageExports();
  const entryNames = new Map<string, Map<string, 'type' | 'value'>>();
  for (const [subpath, files] of entries) entryNames.set(subpath, exportLists(path.join(root, files.types)).names);

  it('package.json exports "." and "./qp", and each entry names its exports explicitly', function () {
    assert.deepEqual([...entries.keys()].sort(), ['.', './qp']);
    for (const [subpath, files] of entries) {
      const source = path.join(root, files.types.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts'));
      const { starExports } = exportLists(source);
      assert.equal(starExports, 0, `${path.relative(root, source)} (exports['${subpath}']) must not use export *`);
    }
  });

  it('each entry resolves by the package name and has at runtime exactly the values its .d.ts declares', async function () {
    for (const [subpath, declared] of entryNames) {
      const specifier = subpath === '.' ? PACKAGE : `${PACKAGE}/${subpath.slice(2)}`;
      const mod = (await import(specifier)) as Record<string, unknown>;
      const values = [...declared].filter(([, kind]) => kind === 'value').map(([name]) => name).sort();
      assert.deepEqual(Object.keys(mod).sort(), values, `runtime exports of '${specifier}'`);
    }
  });

  it("advcorrect/qp is a part of the main entry (same objects) and imports no TensorFlow.js", async function () {
    const main = (await import(PACKAGE)) as Record<string, unknown>;
    const qp = (await import(`${PACKAGE}/qp`)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(qp)) assert.equal(main[name], value, `advcorrect/qp's ${name} differs from advcorrect's`);
    for (const name of entryNames.get('./qp')!.keys()) assert.ok(entryNames.get('.')!.has(name), `${name} is in advcorrect/qp but not in advcorrect`);
    // Follow the relative imports from the entry's JavaScript: no file may import @tensorflow/*.
    const seen = new Set<string>();
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const code = readFileSync(file, 'utf8');
      for (const m of code.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1];
        assert.ok(!spec.startsWith('@tensorflow/'), `${path.relative(root, file)} imports ${spec}`);
        if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      }
    };
    visit(path.join(root, entries.get('./qp')!.import));
    assert.ok(seen.size > 5, `followed only ${seen.size} files`);
  });

  it('every import from advcorrect in README.md and docs/ names an exported entry and exported names', async function () {
    const imports = markdownFiles().flatMap(docImports);
    assert.ok(imports.length >= 3, `found only ${imports.length} imports in the docs`);
    for (const im of imports) {
      const where = `${im.file}:${im.line}`;
      const subpath = im.specifier === PACKAGE ? '.' : `./${im.specifier.slice(PACKAGE.length + 1)}`;
      const names = entryNames.get(subpath);
      assert.ok(names, `${where}: '${im.specifier}' is not in package.json exports (ERR_PACKAGE_PATH_NOT_EXPORTED)`);
      await import(im.specifier);
      for (const name of im.names) assert.ok(names.has(name), `${where}: '${im.specifier}' does not export ${name}`);
    }
  });

  it('docs/api.md documents exactly what lib/index.ts exports', function () {
    const exported = exportLists(path.join(root, 'lib', 'index.ts')).names;
    const documented = documentedNames();
    const undocumented = [...exported.keys()].filter((name) => !documented.has(name));
    const notExported = [...documented.keys()].filter((name) => !exported.has(name));
    assert.deepEqual(undocumented, [], 'exported by lib/index.ts, missing from docs/api.md');
    assert.deepEqual(notExported.map((name) => `${name} (docs/api.md:${documented.get(name)})`), [], 'in docs/api.md, not exported by lib/index.ts');
  });

  it('the names renamed in 0.2.0 are exported only under their new spelling', function () {
    const renamed: Record<string, string> = {
      DEFAULT_QP_EPS: 'DEFAULT_QP_TOLERANCE',
      DEFAULT_ADMM_EPS: 'DEFAULT_ADMM_TOLERANCE',
      DEFAULT_DUAL_EPS: 'DEFAULT_DUAL_TOLERANCE',
      PoolEntry: 'ParetoPoolEntry',
    };
    for (const [subpath, names] of entryNames) {
      for (const [old, now] of Object.entries(renamed)) {
        assert.ok(!names.has(old), `exports['${subpath}'] still has ${old}`);
        if (subpath === '.' || !now.endsWith('Entry')) assert.ok(names.has(now), `exports['${subpath}'] lacks ${now}`);
      }
    }
  });
});
