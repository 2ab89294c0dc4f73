#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a built advcorrect: system packages, npm packages,
# the native addon and the TypeScript build. Safe to run again.
#   --check-gyp   also build the addon with node-gyp from binding.gyp (CI proves both build files work)
#   --no-apt      never call apt-get; only report what is missing
set -euo pipefail
cd "$(dirname "$0")/.."

check_gyp=false
use_apt=true
for arg in "$@"; do
  case "$arg" in
    --check-gyp) check_gyp=true ;;
    --no-apt) use_apt=false ;;
    *) echo "setup: unknown option $arg (known: --check-gyp, --no-apt)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

# Node.js >= 20.17 (cmake-js 8 and our engines field need it).
if ! command -v node >/dev/null 2>&1; then
  echo "setup: Node.js is missing. Install Node.js 20.17 or newer (e.g. 'apt-get install nodejs npm' on Debian 13, or from nodejs.org)." >&2
  exit 1
fi
node -e 'const [a,b]=process.versions.node.split(".").map(Number); if (a<20||(a===20&&b<17)) { console.error(`setup: Node.js ${process.versions.node} is too old; advcorrect needs 20.17 or newer.`); process.exit(1); }'

# System packages: a C++17 compiler, CMake, pkg-config and Eigen 3; Fashion-MNIST comes from Debian too.
required_debs=(cmake g++ make pkg-config libeigen3-dev)
optional_debs=(dataset-fashion-mnist)
missing=()
for deb in "${required_debs[@]}" "${optional_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q 'install ok installed' || missing+=("$deb")
done
if ((${#missing[@]})); then
  if $use_apt && command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; }; then
    sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    say "installing ${missing[*]} with apt-get"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    still_missing=()
    for deb in "${missing[@]}"; do
      [[ " ${optional_debs[*]} " == *" $deb "* ]] || still_missing+=("$deb")
    done
    if ((${#still_missing[@]})); then
      echo "setup: missing system packages: ${still_missing[*]}" >&2
      echo "setup: install them with: sudo apt-get install ${still_missing[*]}" >&2
      exit 1
    fi
    say "optional package dataset-fashion-mnist is not installed (only needed for --dataset fashion-mnist): sudo apt-get install dataset-fashion-mnist"
  fi
fi

# npm's install hook (scripts/build-native.cjs) builds the addon with cmake-js from CMakeLists.txt.
say "installing npm packages and building the native addon (cmake-js)"
# onnxruntime-node (a dev dependency, the independent runtime the ONNX tests compare against) ships its
# CPU binaries in the package; its install script would also fetch CUDA binaries from outside: skip that.
export npm_config_onnxruntime_node_install=skip
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

if $check_gyp; then
  # node-gyp always builds into ./build, so it builds a copy of the sources to keep cmake-js' build.
  say "building the addon with node-gyp (binding.gyp) in a scratch copy"
  scratch=$(mktemp -d)
  cp -r binding.gyp package.json native scripts "$scratch"/
  ln -s "$PWD/node_modules" "$scratch/node_modules"
  if ! (cd "$scratch" && npx --no-install node-gyp rebuild -j 2 >gyp.log 2>&1); then
    cat "$scratch/gyp.log" >&2; echo "setup: node-gyp build failed (log above)" >&2; exit 1
  fi
  ADVCORRECT_NATIVE_PATH="$scratch/build/Release/advcorrect_native.node" node -e 'const m=require(process.env.ADVCORRECT_NATIVE_PATH); console.log("setup: the node-gyp build loads; modules:", m.modules.join(", "))'
  rm -rf "$scratch"
fi

say "compiling TypeScript"
npm run --silent build:ts
node -e 'import("./dist/lib/native.js").then((m) => { const info = m.loadNative().buildInfo(); console.log(`setup: native addon ready (Eigen ${info.eigen}, ${info.simd}, ${info.openmpThreads} threads)`); })'
say "ready: try 'npx advcorrect demo' or 'npx advcorrect --help'"
