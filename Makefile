# mxgate — one binary; see README.md.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/mxgate
PKGS    := ./...
FUZZTIME ?= 10s
# Debian packages the tests drive as real peers.
TEST_DEBS := postfix swaks keepalived iproute2 redis-server clamav-daemon rspamd spamassassin spamd spamc

.PHONY: all build run test unit fuzz bench chaos check deps clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/mxgate

# A single node on loopback with the embedded store (no Redis, no config).
run: build
	./$(BIN) serve

# Installs what the tests need when it is missing, then runs everything.
test: deps unit fuzz

unit:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -race -timeout 12m $(PKGS)

# Short runs of every fuzz target; longer: make fuzz FUZZTIME=5m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzWalk$$' -fuzztime $(FUZZTIME) ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzWalkAmbiguous$$' -fuzztime $(FUZZTIME) ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzUUDecode$$' -fuzztime $(FUZZTIME) ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzParseRule$$' -fuzztime $(FUZZTIME) ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzRulePrefilter$$' -fuzztime $(FUZZTIME) ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./config
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./clusterconf
	$(GO) test -run '^$$' -fuzz '^FuzzParseValue$$' -fuzztime $(FUZZTIME) ./lists
	$(GO) test -run '^$$' -fuzz '^FuzzRelayPolicy$$' -fuzztime $(FUZZTIME) ./smtpfront
	$(GO) test -run '^$$' -fuzz '^FuzzSession$$' -fuzztime $(FUZZTIME) ./smtpfront
	$(GO) test -run '^$$' -fuzz '^FuzzEnvelopeAddress$$' -fuzztime $(FUZZTIME) ./smtpfront
	$(GO) test -run '^$$' -fuzz '^FuzzDotStuffer$$' -fuzztime $(FUZZTIME) ./deliver
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./cluster/vrrp
	$(GO) test -run '^$$' -fuzz '^FuzzEnvelope$$' -fuzztime $(FUZZTIME) ./peer
	$(GO) test -run '^$$' -fuzz '^FuzzReadEntries$$' -fuzztime $(FUZZTIME) ./msglog/journal
	$(GO) test -run '^$$' -fuzz '^FuzzDial$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./kv
	$(GO) test -run '^$$' -fuzz '^FuzzEscapeInvisible$$' -fuzztime $(FUZZTIME) ./cmd/mxgate
	$(GO) test -run '^$$' -fuzz '^FuzzReply$$' -fuzztime $(FUZZTIME) ./engines/clamd
	$(GO) test -run '^$$' -fuzz '^FuzzReply$$' -fuzztime $(FUZZTIME) ./engines/spamd
	$(GO) test -run '^$$' -fuzz '^FuzzReply$$' -fuzztime $(FUZZTIME) ./engines/rspamd
	$(GO) test -run '^$$' -fuzz '^FuzzRemoveOwnResults$$' -fuzztime $(FUZZTIME) ./mailauth
	$(GO) test -run '^$$' -fuzz '^FuzzPvalue$$' -fuzztime $(FUZZTIME) ./mailauth
	$(GO) test -run '^$$' -fuzz '^FuzzHeaderFields$$' -fuzztime $(FUZZTIME) ./mailauth
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) ./dnsbl

# Needs root (Postfix, smtp-sink -u, network namespaces) and
# ../shared/bench/smtp-anchors.sh. Results: bench/results/*.md (the
# engines against their own clients: engines.md).
bench: deps build
	@for p in haproxy clamdscan; do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p >/dev/null; }; \
	done
	BUILD=1 ./bench/run.sh
	BIN=$(BIN) ./bench/failover.sh
	./bench/cluster.sh
	MXGATE_BENCH_ENGINES_OUT=$(CURDIR)/bench/results/engines.md MXGATE_BIN=$(CURDIR)/$(BIN) \
		$(GO) test -count=1 -timeout 30m -run '^TestEngineBench$$' -v ./bench/enginebench

# The chaos test's long form (root: network namespaces): every failure
# event repeated under a steady stream of mail; make test runs the short
# form. Results: bench/results/chaos.md.
chaos: deps
	MXGATE_CHAOS=long MXGATE_CHAOS_OUT=$(CURDIR)/bench/results/chaos.md \
		$(GO) test -count=1 -timeout 30m -run '^TestChaos$$' -v ./cmd/mxgate

# What CI keeps honest besides the tests.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff

deps:
	@missing=""; for p in $(TEST_DEBS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

clean:
	rm -rf bin
