# salvage: the two set-up commands are `make demo` and `make test`; both
# install what they need on a fresh Debian 12 machine.
GO       ?= go
CACHE    ?= $(or $(SALVAGE_LAB_CACHE),$(HOME)/.cache/salvage/lab)
BIN      := bin/salvage
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
export SALVAGE_LAB_CACHE := $(CACHE)
export CGO_ENABLED := 0
SHELL    := /bin/bash

.PHONY: all build deps lab demo test test-6.12 fuzz bench e2e matrix package clean

all: build

build: $(BIN)

$(BIN): FORCE
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/salvage

FORCE:

deps:
	./lab/deps.sh

# The corpus of real crash dumps and crash's reference outputs, cached
# under $(CACHE) and keyed by what made them.
lab: deps build
	$(BIN) lab build

# The whole story: a lab machine armed by salvage alone crashes, its
# capture kernel saves the dump with salvage, and salvage analyzes it.
demo: lab
	$(BIN) lab demo

fuzz: deps
	./lab/fuzz.sh

test: lab fuzz
	$(GO) test -count=1 -timeout 30m ./...

# Every test on a corpus of both kernel generations, bookworm's 6.1 and
# bookworm-security's 6.12 (in a cache of its own; about 10 minutes more to
# build from nothing than the default corpus).
test-6.12:
	SALVAGE_LAB_KERNELS=6.1,6.12 $(MAKE) test CACHE=$(CACHE)-612

# The kdump service end to end under QEMU, with salvage alone in the
# guests: real panics, the capture kernel saving each dump; a line per cycle.
e2e: lab
	set -o pipefail; $(GO) test -count=1 -v -timeout 60m -run '^TestE2E' ./capture/ | grep -E '^(e2e:|--- FAIL|FAIL|ok)'

# The collector's whole compatibility matrix (53 outputs, level × codec ×
# format, each opened by crash and by salvage); make test checks its diagonal.
matrix: lab
	$(GO) test -count=1 -v -timeout 60m -run '^TestCollectMatrix$$' ./collect/ -matrix-full

# A Debian package of salvage with its systemd unit, in dist/.
package: build
	./packaging/build-deb.sh $(BIN) dist

# The benchmarks. BenchmarkCollectBig (about 3 minutes; -v prints its
# table) runs on the bench crash, a 6 GiB guest that `lab build --bench`
# makes (about 3 minutes the first time) under $(CACHE)/bench/.
bench: lab
	$(BIN) lab build --bench
	$(GO) test -v -run '^$$' -bench . -benchtime 3x -skip '^BenchmarkCollectBig$$' ./...
	$(GO) test -v -run '^$$' -bench '^BenchmarkCollectBig$$' -benchtime 3x -timeout 30m ./collect/

clean:
	rm -rf bin
