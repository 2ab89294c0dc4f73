#!/usr/bin/env node
// The dependency check of docs/architecture.md: every import in lib/ runs down the layer order, no
// file takes part in an import cycle, and lib/ has no dynamic import of a computed specifier.
//
//   node scripts/check-layers.mjs [--root DIR]
//
// Reads lib/**/*.ts, bench/**/*.ts and scripts/**/*.ts under DIR (default: the repository), prints
// one line per violation and exits 1, or prints one summary line and exits 0. Imports are read with
// the TypeScript parser (already a dev dependency), so multi-line, type-only, `export … from`,
// dynamic `import('…')` and `typeof import('…')` all count.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layers of lib/, bottom first. A file may import its own layer and any layer of a lower rank;
 * layers of the same rank (qp, data and backend; correction and baselines) do not import each other.
 */
export const LAYERS = [
  { name: 'base', rank: 0, paths: ['errors.ts', 'native.ts', 'util/'] },
  { name: 'qp', rank: 1, paths: ['qp/'] },
  { name: 'data', rank: 1, paths: ['data/'] },
  { name: 'backend', rank: 1, paths: ['backend/'] },
  { name: 'models', rank: 2, paths: ['models/'] },
  { name: 'attacks', rank: 3, paths: ['attacks/'] },
  { name: 'correction', rank: 4, paths: ['correction/'] },
  { name: 'baselines', rank: 4, paths: ['baselines/'] },
  { name: 'report', rank: 5, paths: ['report/'] },
  { name: 'runs', rank: 6, paths: ['runs/'] },
  { name: 'cli', rank: 7, paths: ['cli/'] },
  { name: 'index', rank: 8, paths: ['index.ts', 'qp-api.ts'] },
];

/** Directories read; bench and scripts are tools that may import any layer of lib. */
const ROOTS = ['lib', 'bench', 'scripts'];

/**
 * Known violations that another branch removes, by file and kind. An entry that no longer matches
 * anything is reported (as a note, not a failure) so that it is deleted.
 */
const ALLOWED = [];

/** The layer of a path relative to lib/ ('data/idx.ts'), or undefined when none is assigned. */
export function layerOf(libRelative) {
  const posix = libRelative.split(path.sep).join('/');
  return LAYERS.find((layer) => layer.paths.some((p) => (p.endsWith('/') ? posix.startsWith(p) : posix === p)));
}

function listTsFiles(dir, out) {
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) listTsFiles(full, out);
    else if (entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** Unwraps `('x')`, `'x' as string` and `<string>'x'` down to the literal; undefined if not a literal. */
function literalText(node) {
  let n = node;
  while (n && (ts.isParenthesizedExpression(n) || ts.isAsExpression(n) || ts.isTypeAssertionExpression(n) || ts.isSatisfiesExpression(n))) {
    n = n.expression;
  }
  return n && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) ? n.text : undefined;
}

/**
 * The imports of one source text: `{ specifier, line, typeOnly }` for each static or dynamic import of a
 * literal, and `{ computed: true, line, text }` for a dynamic import of anything else.
 */
export function importsOf(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found = [];
  const lineOf = (node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      const typeOnly = ts.isImportDeclaration(node) ? Boolean(node.importClause?.isTypeOnly) : node.isTypeOnly;
      found.push({ specifier: literalText(node.moduleSpecifier), line: lineOf(node), typeOnly });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      found.push({ specifier: literalText(node.moduleReference.expression), line: lineOf(node), typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const specifier = literalText(node.arguments[0]);
      if (specifier === undefined) found.push({ computed: true, line: lineOf(node), text: node.getText(source) });
      else found.push({ specifier, line: lineOf(node), typeOnly: false });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      found.push({ specifier: literalText(node.argument.literal), line: lineOf(node), typeOnly: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The .ts file a relative specifier names ('./x.js' → x.ts, './dir' → dir/index.ts), or undefined. */
function resolveRelative(fromFile, specifier) {
  const target = path.resolve(path.dirname(fromFile), specifier);
  const candidates = [];
  if (/\.[cm]?js$/.test(target)) candidates.push(target.replace(/\.([cm]?)js$/, '.$1ts'));
  candidates.push(target, `${target}.ts`, path.join(target, 'index.ts'));
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/** Strongly connected components with more than one file (or a file importing itself), Tarjan's algorithm. */
function cyclicComponents(nodes, edges) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const connect = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const { to } of edges.get(v) ?? []) {
      if (!index.has(to)) {
        connect(to);
        low.set(v, Math.min(low.get(v), low.get(to)));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v), index.get(to)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = (edges.get(v) ?? []).some((e) => e.to === v);
      if (component.length > 1 || selfLoop) components.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) connect(v);
  return components;
}

/** A shortest cycle through `start` inside `component` (breadth-first), as a list of edges. */
function shortestCycle(start, component, edges) {
  const inside = new Set(component);
  const via = new Map();
  const queue = [start];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    for (const edge of edges.get(v) ?? []) {
      if (!inside.has(edge.to)) continue;
      if (edge.to === start) {
        const path = [edge];
        for (let u = v; u !== start; u = via.get(u).from) path.unshift(via.get(u));
        return path;
      }
      if (!via.has(edge.to)) {
        via.set(edge.to, edge);
        queue.push(edge.to);
      }
    }
  }
  return [];
}

/**
 * Checks the tree under `root`. Returns `{ files, imports, problems, notes }`; `problems` are the lines
 * to print for the violations (empty when the tree passes).
 */
export function checkLayers(root) {
  const rel = (file) => path.relative(root, file).split(path.sep).join('/');
  const files = ROOTS.flatMap((r) => listTsFiles(path.join(root, r), []).sort());
  const known = new Set(files);
  const edges = new Map();
  const problems = [];
  const allowedHits = new Set();
  let imports = 0;
  const allowed = (file, kind) => {
    const entry = ALLOWED.find((a) => a.file === rel(file) && a.kind === kind);
    if (entry) allowedHits.add(entry);
    return entry !== undefined;
  };

  for (const file of files) {
    const [rootDir, ...rest] = rel(file).split('/');
    const fromLayer = rootDir === 'lib' ? layerOf(rest.join('/')) : undefined;
    const where = rel(file);
    if (rootDir === 'lib' && !fromLayer) problems.push(`${where}: lib/${rest[0]} is not assigned to a layer (add it to LAYERS in scripts/check-layers.mjs and to docs/architecture.md)`);
    for (const imp of importsOf(file, readFileSync(file, 'utf8'))) {
      imports++;
      if (imp.computed) {
        if (rootDir === 'lib' && !allowed(file, 'computed-dynamic-import')) {
          problems.push(`${where}:${imp.line} imports a computed specifier (${imp.text}): lib/ imports only string literals, so this check can follow them`);
        }
        continue;
      }
      if (imp.specifier === undefined || !imp.specifier.startsWith('.')) continue; // a package or node: built-in
      const target = resolveRelative(file, imp.specifier);
      if (!target) {
        problems.push(`${where}:${imp.line} imports ${imp.specifier}, which is no file here`);
        continue;
      }
      const [toRoot, ...toRest] = rel(target).split('/');
      if (known.has(target)) {
        if (!edges.has(file)) edges.set(file, []);
        edges.get(file).push({ from: file, to: target, line: imp.line, specifier: imp.specifier });
      }
      if (rootDir !== 'lib') continue; // bench and scripts may import anything
      const toLayer = toRoot === 'lib' ? layerOf(toRest.join('/')) : undefined;
      const fromName = fromLayer?.name ?? 'unassigned';
      if (toRoot !== 'lib') {
        problems.push(`${where}:${imp.line} imports ${imp.specifier} (layer ${fromName} → ${toRoot}, outside lib)`);
      } else if (fromLayer && toLayer && toLayer.name !== fromLayer.name && toLayer.rank >= fromLayer.rank) {
        problems.push(`${where}:${imp.line} imports ${imp.specifier} (layer ${fromLayer.name} → layer ${toLayer.name})`);
      }
    }
  }

  for (const component of cyclicComponents(files, edges)) {
    const cycle = shortestCycle(component[0], component, edges);
    const names = [...cycle.map((e) => rel(e.from)), rel(component[0])];
    const extra = component.length > cycle.length ? ` (one of the cycles among ${component.length} files: ${component.map(rel).join(', ')})` : '';
    problems.push(`import cycle: ${names.join(' → ')}${extra}`);
    for (const edge of cycle) problems.push(`  ${rel(edge.from)}:${edge.line} imports ${edge.specifier}`);
  }

  const notes = ALLOWED.filter((a) => !allowedHits.has(a)).map(
    (a) => `note: the allowed ${a.kind} in ${a.file} is gone; delete its entry from ALLOWED in scripts/check-layers.mjs`,
  );
  for (const a of ALLOWED) {
    if (allowedHits.has(a)) notes.push(`note: allowed for now: ${a.kind} in ${a.file} (see ALLOWED in scripts/check-layers.mjs)`);
  }
  return { files: files.length, imports, problems, notes };
}

function main(argv) {
  let root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--root' && argv[i + 1] !== undefined) root = path.resolve(argv[++i]);
    else {
      console.error('usage: node scripts/check-layers.mjs [--root DIR]');
      return 2;
    }
  }
  if (!existsSync(path.join(root, 'lib'))) {
    console.error(`check-layers: ${root} has no lib/ directory`);
    return 2;
  }
  const { files, imports, problems, notes } = checkLayers(root);
  for (const note of notes) console.error(note);
  if (problems.length > 0) {
    for (const line of problems) console.error(line);
    console.error(`check-layers: ${problems.filter((p) => !p.startsWith('  ')).length} problem(s) in ${files} files (layer order: docs/architecture.md)`);
    return 1;
  }
  console.log(`check-layers: ${files} files, ${imports} imports: layer order kept, no import cycles`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
