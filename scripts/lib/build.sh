# How the test scripts build, sourced by scripts/test, test-browser,
# test-peer and test-ice, so that the suites share one release build.
#
# Tests need no link-time optimization: the release profile's thin LTO
# (for the binaries people run and the benchmarks measure) makes every
# test binary and example link for much longer. The benchmarks in bench/
# do not source this and build with the profile as it is.
export CARGO_PROFILE_RELEASE_LTO=false
