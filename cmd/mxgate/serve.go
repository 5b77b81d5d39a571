package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/config"
	"github.com/mxgate/mxgate/node"
)

func newServeCmd() *cobra.Command {
	var path string
	var check bool
	cmd := &cobra.Command{
		Use:   "serve [-c FILE]",
		Short: "Run a gateway node",
		Long: `Run a gateway node: the SMTP front end, the scanning pool, the admin API.

Without -c the node runs on loopback with the embedded store in ./mxgate-data,
accepts mail from loopback clients for any domain and relays it to
127.0.0.1:2526.`,
		Example: "  mxgate serve -c /etc/mxgate/mxgate.yaml\n  mxgate serve --check -c /etc/mxgate/mxgate.yaml\n  kill -HUP $(pidof mxgate)    # reload the node file",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if check {
				// Like postfix check and keepalived -t: the file's problems
				// (every one, each naming its key) and exit 1, or a word and 0.
				name := path
				if name == "" {
					name = "built-in defaults"
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s: configuration ok\n", name)
				return err
			}
			return serve(cmd.Context(), path, cfg)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().BoolVar(&check, "check", false, "check the configuration file and exit: 0 when it is good, 1 with its problems")
	return cmd
}

func loadConfig(path string) (config.Config, error) {
	if path == "" {
		cfg := config.Default()
		// Like Postfix's default mynetworks, a node started without a
		// configuration trusts only its own host, so a first message can go
		// through and nothing else can relay.
		cfg.SMTP.TrustedNetworks = []string{"127.0.0.0/8", "::1/128"}
		return cfg, cfg.Validate()
	}
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

func newLogger(cfg config.Node) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	setLevel(level, cfg.LogLevel)
	return node.NewLogger(os.Stderr, cfg.LogFormat, level), level
}

// setLevel sets node.log_level (validated; empty is info).
func setLevel(v *slog.LevelVar, s string) {
	var level slog.Level
	level.UnmarshalText([]byte(s))
	v.Set(level)
}

// serve runs one node until ctx ends or SIGTERM or SIGINT comes, or a part
// of it fails, then stops it (node.Stop says in which order). A stop during
// start-up ends the start where it is; a second signal ends the process at
// once. SIGHUP reloads the node file at path (see reload) instead of
// ending the process, as Go's default would.
func serve(ctx context.Context, path string, cfg config.Config) error {
	log, level := newLogger(cfg.Node)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	guard := guardStop(ctx, log, cfg.SMTP.DrainTimeout.Duration+stopMargin)
	defer guard.release()
	ctx = guard.ctx
	if os.Getenv("GOGC") == "" {
		// The live heap of a node is small (a few MB plus the messages in
		// flight), so the default GOGC=100 collects every few dozen
		// messages; measured on 2 cores, GC was a quarter of the CPU per
		// message. 400 keeps the peak RSS under load near 40 MB.
		debug.SetGCPercent(400)
	}
	v, _ := buildVersion()
	n, err := node.Build(ctx, cfg, log, node.WithVersion(v))
	if err != nil {
		return startEnded(ctx, log, err)
	}
	if err := n.Start(ctx); err != nil {
		guard.stopping()
		n.Stop(context.Background())
		return startEnded(ctx, log, err)
	}
	var runErr error
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case runErr = <-n.Failed():
			running = false
		case <-hup:
			reload(ctx, n, path, level, log)
		}
	}
	guard.stopping()
	n.Stop(context.Background())
	return runErr
}

// reload reads the node file again (SIGHUP) and applies what can change
// live: node.log_level here, the cluster-wide settings through the node.
// A file that does not load or validate is reported in one line and
// changes nothing; keys that need a restart are named in one line and
// keep their running value.
func reload(ctx context.Context, n *node.Node, path string, level *slog.LevelVar, log *slog.Logger) {
	if path == "" {
		log.Warn("SIGHUP: no node file to reload (started without -c); nothing changed")
		return
	}
	cfg, err := loadConfig(path)
	if err != nil {
		log.Error("SIGHUP: node file refused; the running configuration stays: "+errorLine(err), "file", path)
		return
	}
	setLevel(level, cfg.Node.LogLevel)
	if keys := n.Reload(ctx, cfg); len(keys) > 0 {
		log.Warn("SIGHUP: these keys take a restart and keep their running value: "+strings.Join(keys, ", "), "file", path, "keys", keys)
	}
	log.Info("SIGHUP: node file reloaded", "file", path)
}
