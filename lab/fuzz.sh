#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time (FUZZTIME,
# default 10s each); findings fail the run and are left in testdata/fuzz.
set -euo pipefail
t=${FUZZTIME:-10s}
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz: $pkg $f ($t)"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
	done
done
