package main

// The quarantine commands that act on several messages: ids from the
// command line and from standard input, one outcome each.

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

// maxStdinIDs bounds the ids one command reads from standard input: a
// stream that never ends must not grow without bound.
const maxStdinIDs = 100000

// minIDs wants at least one id.
func minIDs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s takes one or more ids (- reads them from standard input); usage: %s", cmd.CommandPath(), cmd.UseLine())
	}
	return nil
}

// ids expands the arguments: "-" stands for the ids on standard input,
// one per line; blank lines and lines starting with # are skipped.
func ids(cmd *cobra.Command, args []string) ([]string, error) {
	if i := slices.Index(args, "-"); i >= 0 && slices.Contains(args[i+1:], "-") {
		return nil, errors.New("- (the ids on standard input) given twice")
	}
	var out []string
	for _, a := range args {
		if a != "-" {
			out = append(out, a)
			continue
		}
		n := 0
		sc := bufio.NewScanner(cmd.InOrStdin())
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if n++; n > maxStdinIDs {
				return nil, fmt.Errorf("more than %d ids on standard input", maxStdinIDs)
			}
			out = append(out, line)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read ids from standard input: %w", err)
		}
		if n == 0 {
			return nil, errors.New("no ids on standard input")
		}
	}
	return out, nil
}

// eachID runs do for every id of args, in order, going on after a
// failure: a single id fails as any command does; with several, each
// failure is one line on stderr and the command fails at the end with the
// count and the first error (whose kind sets the exit status).
func eachID(cmd *cobra.Command, args []string, do func(id string) error) error {
	list, err := ids(cmd, args)
	if err != nil {
		return err
	}
	if len(list) == 1 {
		return do(list[0])
	}
	var first error
	failed := 0
	for i, id := range list {
		if err := cmd.Context().Err(); err != nil {
			return fmt.Errorf("stopped before %s (%d of %d done, %d failed): %w", clean(id), i, len(list), failed, err)
		}
		err := do(id)
		if err == nil {
			continue
		}
		var answer *admin.Error
		if !errors.As(err, &answer) {
			// No answer from the API (unreachable, a cut connection): the
			// next id would fare no better.
			return fmt.Errorf("stopped at %s (%d of %d done, %d failed): %w", clean(id), i, len(list), failed, err)
		}
		failed++
		if first == nil {
			first = err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "mxgate: %s: %s\n", clean(id), errorLine(err))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d failed, the first: %w", failed, len(list), first)
	}
	return nil
}
