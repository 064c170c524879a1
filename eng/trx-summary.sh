#!/usr/bin/env bash
# eng/trx-summary.sh DIR — sums the TRX files (one per test assembly) that `dotnet test --logger trx`
# wrote into DIR and prints, as its last line, "total: N passed, N failed, N skipped".
# Exit status: 0 when every test passed or was skipped for a reason other than torch; 1 when a test
# failed or no results were found; 3 when a test whose fully qualified name contains "Torch" was
# skipped (the project's rule: torch tests must run, never skip) — each such test is named first.
#
# TRX is XML, but vstest writes each element with its attributes on one line, which is all this needs;
# awk keeps the script free of anything the host may lack.
set -euo pipefail
dir=$1
shopt -s nullglob
files=("$dir"/*.trx)
if ((${#files[@]} == 0)); then
  echo "test: no test results (.trx) in $dir" >&2
  echo "total: 0 passed, 0 failed, 0 skipped"
  exit 1
fi
awk '
  function attr(line, name) {
    if (!match(line, " " name "=\"[^\"]*\"")) return ""
    return substr(line, RSTART + length(name) + 3, RLENGTH - length(name) - 4)
  }
  /<UnitTestResult / {
    key = FILENAME SUBSEP attr($0, "testId")
    outcome = attr($0, "outcome")
    if (outcome == "Passed") passed++
    else if (outcome ~ /^(Failed|Error|Timeout|Aborted)$/) failed++
    else { skipped++; skippedName[key] = attr($0, "testName") }
  }
  /<UnitTest / { current = FILENAME SUBSEP attr($0, "id") }
  /<TestMethod / { fqn[current] = attr($0, "className") "." attr($0, "name") }
  END {
    for (key in skippedName) {
      if ((fqn[key] " " skippedName[key]) ~ /Torch/) {
        print "test: torch test skipped (torch tests must run): " skippedName[key] > "/dev/stderr"
        torchSkipped++
      }
    }
    printf "total: %d passed, %d failed, %d skipped\n", passed, failed, skipped
    exit torchSkipped ? 3 : failed ? 1 : 0
  }' "${files[@]}"
