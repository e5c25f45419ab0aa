package stepkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/remote"
)

// File is the desired state of one remote file.
type File struct {
	// Path is the absolute path on the host (Root is added by the helpers).
	Path    string
	Content []byte
	Mode    fs.FileMode
	// Owner is "user:group". Empty means "whatever root writes" and is not
	// compared, so a file an operator chowned on purpose is not fought over.
	Owner string
}

// FileState is what a host reported for one path.
type FileState struct {
	Exists bool
	// NotRegular is set when the path exists but is a directory, device, ...
	NotRegular bool
	Mode       fs.FileMode
	Owner      string // user:group
	SHA256     string // hex
}

// statScript prints one line per path: "missing", "notfile", or
// "MODE USER:GROUP SHA256". One remote command covers every file, so planning
// ten config files costs one round trip, not twenty.
func statScript(paths []string) string {
	var b strings.Builder
	b.WriteString(`f() { if [ -f "$1" ]; then s=$(stat -L -c '%a %U:%G' -- "$1") && h=$(sha256sum < "$1") && printf '%s %s\n' "$s" "${h%% *}" || echo error; elif [ -e "$1" ]; then echo notfile; else echo missing; fi; }`)
	for _, p := range paths {
		b.WriteString("; f ")
		b.WriteString(Quote(p))
	}
	return b.String()
}

// parseStat turns statScript's output into one FileState per path.
func parseStat(out string, n int) ([]FileState, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if n == 0 {
		return nil, nil
	}
	if len(lines) != n {
		return nil, fmt.Errorf("stat: expected %d lines, got %d: %q", n, len(lines), out)
	}
	states := make([]FileState, n)
	for i, l := range lines {
		switch l = strings.TrimSpace(l); l {
		case "missing":
		case "notfile":
			states[i] = FileState{Exists: true, NotRegular: true}
		case "error":
			return nil, fmt.Errorf("stat: cannot read file %d", i+1)
		default:
			fields := strings.Fields(l)
			if len(fields) != 3 {
				return nil, fmt.Errorf("stat: unexpected line %q", l)
			}
			mode, err := strconv.ParseUint(fields[0], 8, 32)
			if err != nil {
				return nil, fmt.Errorf("stat: bad mode in %q: %w", l, err)
			}
			states[i] = FileState{Exists: true, Mode: fs.FileMode(mode), Owner: fields[1], SHA256: fields[2]}
		}
	}
	return states, nil
}

// StatFiles reports the state of paths (host paths; Root is added here).
func StatFiles(ctx context.Context, t *engine.Target, paths []string) ([]FileState, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	hp := make([]string, len(paths))
	for i, p := range paths {
		hp[i] = HostPath(t, p)
	}
	out, err := RunAsRoot(ctx, t, statScript(hp))
	if err != nil {
		return nil, fmt.Errorf("inspect files: %w", err)
	}
	return parseStat(out, len(paths))
}

// FileDiff decides what must change to turn state into f; nil means none.
func FileDiff(f File, st FileState) *engine.Change {
	if !st.Exists {
		return &engine.Change{Action: "create", Object: f.Path, Detail: fmt.Sprintf("mode %04o", f.Mode.Perm())}
	}
	if st.NotRegular {
		return &engine.Change{Action: "update", Object: f.Path, Detail: "replace non-regular file"}
	}
	var why []string
	sum := sha256.Sum256(f.Content)
	if hex.EncodeToString(sum[:]) != st.SHA256 {
		why = append(why, "content differs")
	}
	if st.Mode.Perm() != f.Mode.Perm() {
		why = append(why, fmt.Sprintf("mode %04o -> %04o", st.Mode.Perm(), f.Mode.Perm()))
	}
	if f.Owner != "" && f.Owner != st.Owner {
		why = append(why, fmt.Sprintf("owner %s -> %s", st.Owner, f.Owner))
	}
	if len(why) == 0 {
		return nil
	}
	return &engine.Change{Action: "update", Object: f.Path, Detail: strings.Join(why, "; ")}
}

// PlanFiles compares the desired files with the host in one remote command
// and returns a create or update change per file that differs.
func PlanFiles(ctx context.Context, t *engine.Target, files []File) ([]engine.Change, error) {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	states, err := StatFiles(ctx, t, paths)
	if err != nil {
		return nil, err
	}
	var changes []engine.Change
	for i, f := range files {
		if c := FileDiff(f, states[i]); c != nil {
			changes = append(changes, *c)
		}
	}
	return changes, nil
}

// ApplyFiles writes every file that plan names (by Object = path) and returns
// the paths written. Files not in the plan are left alone, so Apply does only
// what the operator saw in the dry run.
func ApplyFiles(ctx context.Context, t *engine.Target, files []File, plan []engine.Change) ([]string, error) {
	want := map[string]bool{}
	for _, c := range plan {
		want[c.Object] = true
	}
	var todo []File
	dirs := map[string]bool{}
	var dirList []string
	for _, f := range files {
		if !want[f.Path] {
			continue
		}
		todo = append(todo, f)
		if d := HostPath(t, path.Dir(f.Path)); !dirs[d] {
			dirs[d] = true
			dirList = append(dirList, d)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	if _, err := RunAsRoot(ctx, t, "mkdir -p -- "+QuoteAll(dirList)); err != nil {
		return nil, fmt.Errorf("create directories %s: %w", strings.Join(dirList, " "), err)
	}
	var written []string
	for _, f := range todo {
		opts := []remote.UploadOption{remote.UploadAsRoot()}
		if f.Owner != "" {
			opts = append(opts, remote.UploadOwner(f.Owner))
		}
		if _, err := t.Host.Upload(ctx, bytes.NewReader(f.Content), HostPath(t, f.Path), f.Mode.Perm(), opts...); err != nil {
			return written, fmt.Errorf("write %s: %w", f.Path, err)
		}
		written = append(written, f.Path)
	}
	return written, nil
}

// HasObject reports whether plan contains a change for object.
func HasObject(plan []engine.Change, object string) bool {
	for _, c := range plan {
		if c.Object == object {
			return true
		}
	}
	return false
}
