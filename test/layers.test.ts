// scripts/check-layers.mjs (the dependency check `npm test` runs first) on the fixture trees of
// test/fixtures/layers: it must report every planted problem, and only those.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../lib/native.js';

const checker = path.join(packageRoot, 'scripts', 'check-layers.mjs');
const fixtures = path.join(packageRoot, 'test', 'fixtures', 'layers');

function check(root: string): { status: number | null; stdout: string; problems: string[] } {
  const run = spawnSync(process.execPath, [checker, '--root', root], { encoding: 'utf8' });
  // stderr: notes, the problem lines, then the count line.
  const problems = run.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('note: ') && !line.startsWith('check-layers: '));
  return { status: run.status, stdout: run.stdout, problems };
}

describe('layer check (scripts/check-layers.mjs)', function () {
  this.timeout(60_000); // each case starts node and loads the TypeScript parser
  it('passes a tree whose imports all run down the layer order', () => {
    const run = check(path.join(fixtures, 'clean'));
    assert.deepEqual(run.problems, []);
    assert.equal(run.status, 0);
    assert.equal(run.stdout, 'check-layers: 8 files, 9 imports: layer order kept, no import cycles\n');
  });

  it('reports each planted violation and cycle of the broken tree with its line, and nothing else', () => {
    const run = check(path.join(fixtures, 'broken'));
    assert.equal(run.status, 1);
    assert.deepEqual(run.problems, [
      'lib/attacks/attack.ts:5 imports a computed specifier (import(specifier)): lib/ imports only string literals, so this check can follow them',
      'lib/data/uses-models.ts:1 imports ../models/net.js (layer data → layer models)',
      'lib/extra/thing.ts: lib/extra is not assigned to a layer (add it to LAYERS in scripts/check-layers.mjs and to docs/architecture.md)',
      'lib/models/tool.ts:1 imports ../../bench/bench.js (layer models → bench, outside lib)',
      'lib/qp/solver.ts:2 imports ../data/a.js (layer qp → layer data)',
      'lib/report/page.ts:1 imports ../cli/main.js (layer report → layer cli)',
      'import cycle: lib/data/a.ts → lib/data/b.ts → lib/data/a.ts',
      '  lib/data/a.ts:1 imports ./b.js',
      '  lib/data/b.ts:1 imports ./a.js',
    ]);
  });

  it('passes the repository itself', () => {
    const run = check(packageRoot);
    assert.deepEqual(run.problems, []);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^check-layers: \d+ files, \d+ imports: layer order kept, no import cycles\n$/);
  });
});
