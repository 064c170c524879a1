#!/usr/bin/env bash
# build.sh — the single entry point. Every command runs in the prepared environment (eng/env.sh):
# directly on a host whose C++ runtime is new enough for TorchSharp, else in a cached Debian 13 root.
#
#   ./build.sh test [-- DOTNET_TEST_ARGS]  build and run every test; the last line is
#                                          "total: N passed, N failed, N skipped"
#   ./build.sh bench                       = ./build.sh run -- compare
#   ./build.sh run -- ARGS                 the lockstep CLI (bench/Lockstep.Bench); `run -- train` first
#                                          fetches the MNIST digits once (eng/mnist.sh) if they are not cached
#   ./build.sh exec -- CMD...              any command in the environment
#
# Exit status: the inner command's. `test` also fails when a test failed or a torch test was skipped.
# LOCKSTEP_SLN picks another solution for `test` (default: Backends.sln).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=eng/env.sh
source "$REPO/eng/env.sh"

BENCH_PROJECT=$REPO/bench/Lockstep.Bench/Lockstep.Bench.csproj

usage() {
  cat >&2 <<'USAGE'
usage: ./build.sh test [-- DOTNET_TEST_ARGS] | bench | run -- ARGS | exec -- CMD...
USAGE
  exit 2
}

cmd_test() {
  local sln results rc=0 summary_rc=0
  sln=$(readlink -f "${LOCKSTEP_SLN:-$REPO/Backends.sln}")
  mkdir -p "$REPO/artifacts/test-results"
  results=$(mktemp -d "$REPO/artifacts/test-results/run.XXXXXX")
  env_run dotnet test "$sln" -c Release --logger trx --results-directory "$results" "$@" || rc=$?
  # On a CPU with AVX-512, the managed tests once more with Vector512 off (.NET 10's knob; DOTNET_EnableAVX512F=0 is
  # not it), so that the Vector256 paths an AVX2-only machine takes are tested too. Not with arguments of the caller's.
  if ((rc == 0 && $# == 0)) && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    DOTNET_EnableAVX512=0 env_run dotnet test "$REPO/tests/Backends.Managed.Tests" -c Release --no-build \
      --logger "trx;LogFileName=managed-without-avx512.trx" --results-directory "$results" || rc=$?
  fi
  # The last run's results stay in artifacts/test-results/last.
  rm -rf "$REPO/artifacts/test-results/last"
  mv "$results" "$REPO/artifacts/test-results/last"
  "$REPO/eng/trx-summary.sh" "$REPO/artifacts/test-results/last" || summary_rc=$?
  ((rc != 0)) && return "$rc"
  return "$summary_rc"
}

cmd_run() {
  # `train` reads the MNIST digits from a cache outside the repository: fetch them once (eng/mnist.sh).
  if [[ ${1:-} == train ]] && ! [[ " $* " == *" --data "* || " $* " == *" --help "* || " $* " == *" -h "* ]]; then
    "$REPO/eng/mnist.sh" || { echo "build.sh: could not fetch the MNIST digits; run eng/mnist.sh, or give train --data DIR" >&2; return 1; }
  fi
  # Build quietly (errors and warnings only, to stderr), so that stdout is the CLI's own output.
  # (`dotnet build` is `dotnet msbuild -restore` plus a summary that -v q does not silence.)
  env_run dotnet msbuild "$BENCH_PROJECT" -restore -p:Configuration=Release -v:q -nologo -clp:NoSummary >&2
  env_run dotnet run -c Release --project "$BENCH_PROJECT" --no-build -- "$@"
}

subcommand=${1:-}
(($#)) && shift
[[ ${1:-} == -- ]] && shift
case $subcommand in
  test) env_prepare; cmd_test "$@" ;;
  bench) env_prepare; cmd_run compare "$@" ;;
  run) env_prepare; cmd_run "$@" ;;
  exec) (($#)) || usage; env_prepare; env_run "$@" ;;
  *) usage ;;
esac
