package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/mxgate/mxgate/lab"
)

// down stops the processes up recorded (those still running the recorded
// program: a reused PID is left alone), then whatever else runs in the
// lab's namespaces, deletes the namespaces and the state directory. A lab
// that is half built, half removed or absent is no error.
func down(ctx context.Context, o options, out io.Writer) error {
	s, err := load(o)
	if err != nil {
		// A damaged state file must not keep the lab alive: the sweep of
		// the namespaces below still finds its processes.
		fmt.Fprintf(out, "%v; removing the namespaces anyway\n", err)
	}
	nss := lab.Namespaces(o.name)
	_, dirErr := os.Stat(o.dir())
	if s == nil && len(nss) == 0 && errors.Is(dirErr, os.ErrNotExist) {
		fmt.Fprintf(out, "no lab %s\n", o.name)
		return nil
	}
	var errs []error
	if s != nil {
		// Nodes first (they hand the VIP over and finish their sessions),
		// then the mail server and Redis they use.
		for _, p := range slices.Backward(s.Procs) {
			if !p.Running() {
				continue
			}
			killed, err := p.Stop(ctx, 10*time.Second)
			switch {
			case err != nil:
				errs = append(errs, err)
			case killed:
				fmt.Fprintf(out, "killed %s (pid %d) after 10s\n", p.Name, p.PID)
			default:
				fmt.Fprintf(out, "stopped %s (pid %d)\n", p.Name, p.PID)
			}
		}
	}
	others, err := lab.Destroy(ctx, o.name)
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range others {
		fmt.Fprintf(out, "stopped pid %d, which ran in the lab's namespaces without being started by up\n", p)
	}
	if left := lab.Namespaces(o.name); len(left) > 0 {
		errs = append(errs, fmt.Errorf("namespaces left: %v", left))
	}
	if err := os.RemoveAll(o.dir()); err != nil {
		errs = append(errs, fmt.Errorf("remove the state directory: %w", err))
	}
	os.Remove(o.state) // only when empty: other labs may have theirs there
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab %s removed: no namespace, link, process or state left\n", o.name)
	return nil
}

// status prints what runs and the guide.
func status(o options, out io.Writer) error {
	s, err := load(o)
	if err != nil {
		return err
	}
	nss := lab.Namespaces(o.name)
	if s == nil {
		if len(nss) > 0 {
			return fmt.Errorf("lab %s is half built (namespaces %v, no state): make lab-down LAB=%s", o.name, nss, o.name)
		}
		fmt.Fprintf(out, "no lab %s (make lab)\n", o.name)
		return nil
	}
	if s.Bare {
		fmt.Fprintf(out, "lab %s, bare: namespaces %v\n", o.name, nss)
		return nil
	}
	l := lab.Open(o.name, nodes)
	defer l.Close()
	for _, p := range s.Procs {
		st := "running"
		if !p.Running() {
			st = "NOT RUNNING"
		}
		fmt.Fprintf(out, "%-6s pid %-8d %-12s %s\n", p.Name, p.PID, st, p.Log)
	}
	fmt.Fprintln(out)
	guide(out, s, l)
	return nil
}
