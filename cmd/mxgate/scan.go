package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

func newScanCmd() *cobra.Command {
	var q admin.ScanQuery
	var ip string
	cmd := &cobra.Command{
		Use:   "scan [FILE|-] [--from ADDR] [--rcpt ADDR]... [--ip IP] [--helo NAME] [--json]",
		Short: "Scan one message with the node's pipeline and print the verdict and every symbol",
		Long: `Send one raw message (RFC 5322, from FILE or standard input) to the node's
admin API, which scans it exactly as the SMTP front end would, with the
built-in checks and every configured engine, and print the verdict, the
score and every symbol with its score (like rspamc symbols or
spamassassin -t). Nothing is delivered, quarantined or logged. The
envelope flags feed the checks that look at the envelope (lists, SPF).`,
		Example: `  mxgate scan message.eml
  mxgate scan --from a@example.com --rcpt b@example.org --ip 192.0.2.7 - < message.eml
  mxgate scan --json message.eml`,
		Args: cobra.MaximumNArgs(1),
	}
	asJSON := jsonFlag(cmd, "the verdict as one JSON object")
	cmd.RunE = withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
		if ip != "" {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("--ip: not an IP address: %q", ip)
			}
			q.IP = a
		}
		in := cmd.InOrStdin()
		if len(args) == 1 && args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("read message: %w", err)
			}
			defer f.Close()
			in = f
		}
		res, err := c.Scan(cmd.Context(), in, q)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if *asJSON {
			return writeJSON(out, res)
		}
		fmt.Fprintf(out, "Action: %s (%s)\nScore: %.2f\nNode: %s\n", clean(res.Action), clean(res.Class), res.Score, clean(res.Node))
		if res.Reason != "" {
			fmt.Fprintf(out, "Reason: %s\n", clean(res.Reason))
		}
		if len(res.Viruses) > 0 {
			fmt.Fprintf(out, "Viruses: %s\n", cleanList(res.Viruses))
		}
		fmt.Fprintf(out, "Symbols: %d\n", len(res.Symbols))
		if len(res.Symbols) == 0 {
			return nil
		}
		t := newTable(out, "  SYMBOL", "SCORE", "DETAIL")
		for _, s := range res.Symbols {
			t.row("  "+s.Name, strconv.FormatFloat(s.Score, 'f', 2, 64), s.Detail)
		}
		return t.flush()
	})
	adminFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&q.From, "from", "", "envelope sender (MAIL FROM)")
	f.StringArrayVar(&q.Rcpts, "rcpt", nil, "envelope recipient (RCPT TO); repeat for more")
	f.StringVar(&ip, "ip", "", "the client's IP address (default 127.0.0.1)")
	f.StringVar(&q.Helo, "helo", "", "the client's HELO name")
	return cmd
}
