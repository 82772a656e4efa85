#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time (FUZZTIME,
# default 5s each); findings fail the run and are left in testdata/fuzz.
#
# Go's fuzzer sometimes ends a run with "context deadline exceeded" and no
# failing input when a worker is slow to stop on a loaded machine (no
# finding is written to testdata/fuzz then): such a run is tried once more.
set -euo pipefail
t=${FUZZTIME:-5s}
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $f ($t)"
		for try in 1 2; do
			if out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" 2>&1); then
				echo "$out" | tail -2
				break
			fi
			echo "$out"
			if [ "$try" = 1 ] && echo "$out" | grep -q 'context deadline exceeded' &&
				! echo "$out" | grep -q 'Failing input written'; then
				echo "fuzz: $f stopped late without a finding; once more"
				continue
			fi
			exit 1
		done
	done
done
