// Command fileinstall installs one file atomically: it copies SRC to a
// temporary file in DST's directory, syncs it, sets its mode and renames it
// over DST, so a reader (a CNI runtime loading 10-flannel.conflist, kubelet
// exec'ing /opt/cni/bin/flannel) sees the old file or the new one, never half
// of one, and a plugin binary that is running does not make the copy fail with
// "text file busy".
//
// The flannel images have no shell or coreutils, so it is the only file tool
// there and picks its behaviour from the name it runs under (argv[0]):
//
//	install-conf SRC DST   mode 0644; what kube-flannel.yml's install-cni init
//	                       container runs as /opt/bin/install-conf (upstream's
//	                       is flannel's cmd/install_conf)
//	cp [-f] SRC DST        keeps SRC's permission bits (0755 for a plugin); DST
//	                       may be a directory. What the install-cni-plugin init
//	                       container runs: `cp -f /flannel /opt/cni/bin/flannel`.
//	                       -f is accepted and changes nothing: the rename
//	                       always replaces DST.
//	fileinstall cp|install-conf ARGS...   the same, by subcommand
//
// Unlike coreutils cp, a DST that is a symlink is replaced, not written through.
// Exit status: 0 done, 1 the copy failed (DST unchanged), 2 bad arguments.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// usageError is a bad command line (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

// run dispatches on argv[0] and returns the exit status.
func run(argv []string, stderr io.Writer) int {
	name := "fileinstall"
	if len(argv) > 0 {
		name = filepath.Base(argv[0])
	}
	args := argv[min(1, len(argv)):]
	if name == "fileinstall" {
		if len(args) == 0 {
			fmt.Fprintln(stderr, "usage: fileinstall cp [-f] SRC DST | fileinstall install-conf SRC DST")
			return 2
		}
		name, args = args[0], args[1:]
	}
	var err error
	switch name {
	case "cp":
		err = cp(args)
	case "install-conf":
		err = installConf(args)
	default:
		fmt.Fprintf(stderr, "fileinstall: unknown command %q (want cp or install-conf, as argv[0] or first argument)\n", name)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %s\n", name, ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}

func installConf(args []string) error {
	if len(args) != 2 || args[0] == "" || args[1] == "" {
		return usageError{fmt.Sprintf("want 2 arguments SRC DST, got %d: %q (usage: install-conf SRC DST)", len(args), args)}
	}
	return installFile(args[0], args[1], 0o644)
}

func cp(args []string) error {
	var paths []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			paths = append(paths, args[i+1:]...)
			break
		}
		if a == "-f" {
			continue
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			return usageError{fmt.Sprintf("unsupported option %q (usage: cp [-f] SRC DST)", a)}
		}
		paths = append(paths, a)
	}
	if len(paths) != 2 || paths[0] == "" || paths[1] == "" {
		return usageError{fmt.Sprintf("want SRC DST, got %d paths: %q (usage: cp [-f] SRC DST)", len(paths), paths)}
	}
	src, dst := paths[0], paths[1]
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	if d, err := os.Stat(dst); err == nil && d.IsDir() {
		dst = filepath.Join(dst, filepath.Base(src))
	}
	return installFile(src, dst, st.Mode().Perm())
}

// installFile copies src to dst through a temporary file in dst's directory and
// a rename, then gives dst exactly mode (no umask). On error dst is unchanged
// and the temporary file is gone.
func installFile(src, dst string, mode os.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", src)
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return fmt.Errorf("temporary file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, tmp.Name(), err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	// Make the rename itself durable; a failure here does not undo the install.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
