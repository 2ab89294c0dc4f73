// Lists the addon's C++ sources for binding.gyp, so node-gyp and cmake-js build the same files.
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
const dirs = ['native/cuts', 'native/qp', 'native/kernels', 'native/binding'];
const files = [];
for (const dir of dirs) {
  const full = path.join(root, dir);
  if (!fs.existsSync(full)) continue;
  for (const name of fs.readdirSync(full).sort()) {
    if (name.endsWith('.cpp')) files.push(`${dir}/${name}`);
  }
}
process.stdout.write(files.join(' '));
