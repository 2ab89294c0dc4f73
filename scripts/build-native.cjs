// npm's install hook: builds the addon with cmake-js, and when that fails says which
// build tool is missing and how to get it (npm would otherwise only show cmake's output).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release', ...process.argv.slice(2)];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status === 0) process.exit(0);

const has = (command, flag = '--version') => spawnSync(command, [flag], { stdio: 'ignore' }).status === 0;
const missing = [];
if (!has('cmake')) missing.push('cmake');
if (!has('g++') && !has('c++')) missing.push('g++');
if (!fs.existsSync('/usr/include/eigen3/Eigen/Core') && spawnSync('pkg-config', ['--exists', 'eigen3']).status !== 0) {
  missing.push('libeigen3-dev');
}
console.error('\nadvcorrect: building the native addon failed.');
if (missing.length > 0) {
  console.error(`advcorrect: missing build tools: ${missing.join(', ')}. On Debian/Ubuntu: sudo apt-get install ${missing.join(' ')}`);
} else {
  console.error('advcorrect: cmake, a C++ compiler and Eigen were found; see the compiler output above.');
}
console.error('advcorrect: then rebuild with `npm run build:native` (or run `bash scripts/setup.sh`).');
process.exit(result.status ?? 1);
