package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mxgate/mxgate/admin"
)

func newBackupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup [FILE|-]",
		Short: "Copy the running node's embedded store (consistent, while it takes mail)",
		Long: `Take a consistent copy of the node's embedded store (the file mxgate.db in
node.data_dir) while the node runs, and write it to FILE, or to standard
output with - or no argument. FILE must not exist yet: a backup never
overwrites one. A transfer cut short is an error, and FILE is removed.

To restore: stop the node, replace mxgate.db in node.data_dir with the
copy, start the node. A node on Redis has no file of its own: back up
Redis (redis-cli BGSAVE, then copy its RDB file).`,
		Example: `  mxgate backup /var/backups/mxgate-$(date +%F).db
  mxgate backup - | gzip > mxgate.db.gz`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.RunE = withAdmin(func(cmd *cobra.Command, args []string, c *admin.Client) error {
		path := "-"
		if len(args) == 1 {
			path = args[0]
		}
		if path == "-" {
			out := cmd.OutOrStdout()
			if f, ok := out.(*os.File); ok {
				if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
					return errors.New("backup: standard output is a terminal; name a FILE or redirect it")
				}
			}
			_, err := c.Backup(cmd.Context(), out)
			return err
		}
		return backupToFile(cmd, c, path)
	})
	adminFlags(cmd)
	return cmd
}

// backupToFile writes the backup to a new file, synced before it is
// reported, and removes what it wrote when the backup fails.
func backupToFile(cmd *cobra.Command, c *admin.Client, path string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("backup: %s exists already; a backup never overwrites a file", path)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("backup: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	n, err := c.Backup(cmd.Context(), f)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "backup: %d bytes written to %s\n", n, path)
	return nil
}
