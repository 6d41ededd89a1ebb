# How the test scripts build, sourced by scripts/test, test-browser,
# test-peer, test-ice and interop, so that the suites share one release
# build.
#
# Tests need no link-time optimization: the release profile's thin LTO
# (for the binaries people run and the benchmarks measure) makes every
# test binary and example link for much longer. The benchmarks in bench/
# do not source this and build with the profile as it is.
export CARGO_PROFILE_RELEASE_LTO=false
# Arithmetic overflow panics in everything the suites run, as in a debug
# build: the unit and property tests, and natter serve, the examples and
# the peers that the browser and interop suites drive. The release
# profile people build keeps them off.
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true

# build_release: every binary, example and test of the workspace, built
# as `cargo test --workspace --release` builds them. The suites build
# through this, not `cargo build -p PACKAGE`: one package alone resolves
# other features of shared dependencies and rebuilds them (about five
# minutes of a CI run), while after scripts/test's cargo test this finds
# everything fresh.
build_release() {
  echo "== cargo test --workspace --release --no-run"
  cargo test --workspace --release --no-run --quiet
}
