package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// checkStateDir refuses a state directory that group or others can reach
// and that holds anything: it keeps every cluster's CA and other private
// keys, the Secrets encryption key, the known_hosts that pins each host's
// key, and the run journals. A directory that does not exist yet is
// created 0700 when first needed; an empty one is made 0700 now.
func checkStateDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("state directory %s: %w", dir, err)
	case !fi.IsDir():
		return badInput(fmt.Errorf("state directory %s is not a directory; fix: point --state-dir (or KUBEWRIGHT_STATE_DIR) at a directory", dir))
	}
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	// An empty directory has exposed nothing yet (a fresh mkdir under
	// umask 022 is 0755): make it private before anything goes in.
	if entries, err := os.ReadDir(dir); err == nil && len(entries) == 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("make empty state directory %s private (chmod 700): %w", dir, err)
		}
		return nil
	}
	return badInput(fmt.Errorf("state directory %s is open to group or others (mode %04o) and holds the clusters' private keys and secrets, so kubewright will not use it; fix: chmod 700 %s", dir, perm, dir))
}
