# mxgate — one binary; see README.md.
GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/mxgate
PKGS    := ./...
# Empty: each fuzz target runs a number of executions (about 5 s each here);
# a duration (FUZZTIME=5m) runs each that long instead.
FUZZTIME ?=
# Debian packages the tests drive as real peers.
TEST_DEBS := postfix swaks keepalived iproute2 redis-server clamav-daemon rspamd spamassassin spamd spamc \
	docker-compose systemd chromium

.PHONY: all build run test unit fuzz bench chaos check deps clean install lab lab-down lab-status

all: build

# The version `mxgate version` prints; the commit and Go version come from the build itself.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $(BIN) ./cmd/mxgate

# A single node on loopback with the embedded store (no Redis, no config).
run: build
	./$(BIN) serve

# The lab (root): three nodes with a VIP, Redis, a mail server and a
# client, each in a network namespace of this host (README: "The lab").
# LAB names it (the prefix of its namespaces; state in /run/mxgate-lab/LAB).
LAB ?= mxlab
lab: build
	$(GO) run ./cmd/mxgate-lab up -name $(LAB) -bin $(BIN)

lab-status:
	$(GO) run ./cmd/mxgate-lab status -name $(LAB)

lab-down:
	$(GO) run ./cmd/mxgate-lab down -name $(LAB)

# Installs what the tests need when it is missing, then runs everything.
test: deps unit fuzz

# Screenshots of the console's pages (and other test artifacts) are kept
# under test-output/_artifacts/ for review.
unit:
	$(GO) vet $(PKGS)
	mkdir -p test-output
	$(GO) test -count=1 -race -timeout 12m -artifacts -outputdir $(CURDIR)/test-output $(PKGS)

# fuzz1 NAME,PACKAGE,EXECUTIONS[,MORE FLAGS]. make test runs counts, not
# durations: with a duration, Go 1.26's fuzz coordinator can fail a target
# at its deadline with "context deadline exceeded" and no failing input (a
# race between its stop and its workers, go.dev/issue/75804, fixed in Go
# 1.27); a count has no deadline to race.
fuzz1 = $(GO) test -run '^$$' -fuzz '^$(1)$$' -fuzztime $(if $(FUZZTIME),$(FUZZTIME),$(3)x) $(4) $(2)

# Short runs of every fuzz target; longer: make fuzz FUZZTIME=5m
fuzz:
	$(call fuzz1,FuzzWalk,./scanner,30000)
	$(call fuzz1,FuzzWalkAmbiguous,./scanner,14000)
	$(call fuzz1,FuzzUUDecode,./scanner,14000)
	$(call fuzz1,FuzzParseRule,./scanner,20000)
	$(call fuzz1,FuzzRulePrefilter,./scanner,40000)
	$(call fuzz1,FuzzParse,./config,25000,-fuzzminimizetime 2s)
	$(call fuzz1,FuzzParse,./clusterconf,25000)
	$(call fuzz1,FuzzParsePatch,./clusterconf,25000)
	$(call fuzz1,FuzzParseValue,./lists,3000)
	$(call fuzz1,FuzzParse,./addrmatch,150000)
	$(call fuzz1,FuzzParseWhen,./admin,20000)
	$(call fuzz1,FuzzSessionCookie,./console,40000)
	$(call fuzz1,FuzzRelayPolicy,./smtpfront,40000)
	$(call fuzz1,FuzzParse,./digest,200000)
	$(call fuzz1,FuzzSession,./smtpfront,7000)
	$(call fuzz1,FuzzEnvelopeAddress,./smtpfront,40000)
	$(call fuzz1,FuzzAcceptedText,./smtpfront,40000)
	$(call fuzz1,FuzzDotStuffer,./deliver,60000)
	$(call fuzz1,FuzzParse,./cluster/vrrp,200000)
	$(call fuzz1,FuzzEnvelope,./peer,50000)
	$(call fuzz1,FuzzReadEntries,./msglog/journal,25000)
	$(call fuzz1,FuzzDial,./kv,25000,-fuzzminimizetime 2s)
	$(call fuzz1,FuzzEscapeInvisible,./cmd/mxgate,7000)
	$(call fuzz1,FuzzAdminURL,./cmd/mxgate,20000)
	$(call fuzz1,FuzzTrustConfig,./admin,10000)
	$(call fuzz1,FuzzReply,./engines/clamd,80000)
	$(call fuzz1,FuzzReply,./engines/spamd,20000)
	$(call fuzz1,FuzzReply,./engines/rspamd,20000)
	$(call fuzz1,FuzzRemoveOwnResults,./mailauth,60000)
	$(call fuzz1,FuzzPvalue,./mailauth,50000)
	$(call fuzz1,FuzzHeaderFields,./mailauth,30000)
	$(call fuzz1,FuzzClassify,./dnsbl,50000)
	$(call fuzz1,FuzzParseCursor,./quarantine,50000)
	$(call fuzz1,FuzzReadMessage,./console,25000)

# Needs root (Postfix, smtp-sink -u, network namespaces) and
# bench/smtp-anchors.sh (the reference SMTP paths). Results: bench/results/*.md (the
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

# Where `make install` puts things; DESTDIR is prepended to each (packaging).
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
DOCDIR     ?= $(PREFIX)/share/doc/mxgate
SYSCONFDIR ?= /etc
# Local units; a package would use /lib/systemd/system.
UNITDIR    ?= /etc/systemd/system
DESTDIR    ?=

# The binary, the systemd unit (ExecStart pointing at SBINDIR), the example
# node files and the README; /etc/mxgate/mxgate.yaml from the single-node
# example unless one exists. Without DESTDIR (a real install, as root), the
# system user mxgate is created when missing and owns the node file's group.
install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples/cluster
	install -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/mxgate
	sed -e 's|/usr/local/sbin/mxgate|$(SBINDIR)/mxgate|g' -e 's|/usr/local/share/doc/mxgate|$(DOCDIR)|g' \
		contrib/systemd/mxgate.service >$(DESTDIR)$(UNITDIR)/mxgate.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mxgate.service
	install -m 0644 README.md config/example.yaml $(DESTDIR)$(DOCDIR)/
	install -m 0644 contrib/examples/single.yaml $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 contrib/examples/cluster/*.yaml $(DESTDIR)$(DOCDIR)/examples/cluster/
	@if [ -z "$(DESTDIR)" ] && ! getent passwd mxgate >/dev/null; then \
		echo "creating the system user mxgate"; \
		useradd --system --user-group --no-log-init --home-dir /var/lib/mxgate --shell /usr/sbin/nologin mxgate; \
	fi
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/mxgate
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/mxgate/mxgate.yaml ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/mxgate/mxgate.yaml (the example is $(DOCDIR)/examples/single.yaml)"; \
	else \
		install -m 0640 contrib/examples/single.yaml $(DESTDIR)$(SYSCONFDIR)/mxgate/mxgate.yaml; \
	fi
	@if [ -z "$(DESTDIR)" ]; then \
		chgrp mxgate $(SYSCONFDIR)/mxgate $(SYSCONFDIR)/mxgate/mxgate.yaml; \
		echo "next: edit $(SYSCONFDIR)/mxgate/mxgate.yaml, then systemctl daemon-reload && systemctl enable --now mxgate"; \
	fi

clean:
	rm -rf bin
