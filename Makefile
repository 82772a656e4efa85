# salvage: the two set-up commands are `make demo` and `make test`; both
# install what they need on a fresh Debian 12 machine.
GO       ?= go
CACHE    ?= $(or $(SALVAGE_LAB_CACHE),$(HOME)/.cache/salvage/lab)
BIN      := bin/salvage
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
export SALVAGE_LAB_CACHE := $(CACHE)
export CGO_ENABLED := 0

.PHONY: all build deps lab demo test fuzz bench clean

all: build

build: $(BIN)

$(BIN): FORCE
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/salvage

FORCE:

deps:
	./lab/deps.sh

# The corpus of real crash dumps and crash's reference outputs, cached
# under $(CACHE) and keyed by what made them.
lab: deps build
	$(BIN) lab build

demo: lab
	$(BIN) lab show sys

fuzz: deps
	./lab/fuzz.sh

test: lab fuzz
	$(GO) test -count=1 -timeout 30m ./...

bench: lab
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin
