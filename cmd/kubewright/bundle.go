package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kubewright/kubewright/installer/artifacts"
)

func newBundleCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Create, verify and inspect offline artifact bundles",
		Long: `An offline bundle is one .tar.gz with every binary and image tarball install
needs and a manifest pinning each file's sha256. Build the artifacts with
'make artifacts' (or download them from upstream with --upstream), pack them
with 'bundle create', carry the file to the air-gapped network, and check it
with 'bundle verify' there; install verifies it again before touching any host.`,
	}
	cmd.AddCommand(newBundleCreateCmd(g), newBundleVerifyCmd(g), newBundleInspectCmd(g))
	// Every bundle command prints text or one JSON document; refuse anything
	// else instead of silently printing text for, say, -o yaml.
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.output != "text" && g.output != "json" {
			return badInput(fmt.Errorf("unknown --output %q for bundle commands (use text or json)", g.output))
		}
		return nil
	}
	return cmd
}

type bundleCreateOptions struct {
	from      string
	upstream  bool
	cacheDir  string
	versions  artifacts.Upstream
	gzipLevel int
}

func newBundleCreateCmd(g *globalOptions) *cobra.Command {
	o := &bundleCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create FILE (--from DIR | --upstream)",
		Short: "Pack an artifacts directory, or upstream's release files, into FILE",
		Example: `  kubewright bundle create kubewright-v1.37.2.tar.gz --from _output/artifacts
  kubewright bundle create upstream.tar.gz --upstream --kubernetes-version v1.37.2 --etcd-version v3.7.3`,
		Args: exactArgs(1, "the bundle file to write"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBundleCreate(cmd, g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "artifacts `DIR` with a manifest.yaml, as written by make artifacts")
	f.BoolVar(&o.upstream, "upstream", false, "download the release files from upstream (or a mirror) instead")
	f.StringVar(&o.cacheDir, "cache-dir", "", "download cache for --upstream (default $KUBEWRIGHT_CACHE, else /var/cache/kubewright as root or the user cache dir)")
	f.StringVar(&o.versions.KubernetesVersion, "kubernetes-version", "v1.37.2", "Kubernetes version for --upstream")
	f.StringVar(&o.versions.EtcdVersion, "etcd-version", "v3.7.3", "etcd version for --upstream")
	f.StringVar(&o.versions.CrictlVersion, "crictl-version", "v1.37.0", "crictl version for --upstream (empty to leave crictl out)")
	f.StringVar(&o.versions.KubernetesURL, "kubernetes-url", artifacts.DefaultKubernetesURL, "Kubernetes release base URL (a mirror with the same layout)")
	f.StringVar(&o.versions.EtcdURL, "etcd-url", artifacts.DefaultEtcdURL, "etcd release base URL")
	f.StringVar(&o.versions.CrictlURL, "crictl-url", artifacts.DefaultCrictlURL, "crictl release base URL")
	f.IntVar(&o.gzipLevel, "gzip-level", 1, "gzip compression level 1 (fast) to 9 (small)")
	return cmd
}

func runBundleCreate(cmd *cobra.Command, g *globalOptions, o *bundleCreateOptions, out string) error {
	ctx := cmd.Context()
	if (o.from == "") == !o.upstream {
		return badInput(errors.New("bundle create: give exactly one of --from DIR and --upstream"))
	}
	if o.gzipLevel < 1 || o.gzipLevel > 9 {
		return badInput(fmt.Errorf("bundle create: --gzip-level %d: want 1..9", o.gzipLevel))
	}
	var src artifacts.Source
	if o.from != "" {
		d, err := artifacts.OpenDir(o.from)
		if err != nil {
			return badInput(err)
		}
		src = d
	} else {
		m, err := o.versions.Manifest()
		if err != nil {
			return badInput(fmt.Errorf("bundle create --upstream: %w", err))
		}
		cache, err := downloadCacheDir(o.cacheDir)
		if err != nil {
			return err
		}
		r, err := artifacts.NewRemote(m, artifacts.RemoteOptions{CacheDir: cache, Logger: bundleLogger(cmd, g)})
		if err != nil {
			return err
		}
		src = r
	}
	m, err := artifacts.CreateBundle(ctx, src, out, artifacts.BundleOptions{Level: o.gzipLevel})
	if err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
			"bundle": out, "bytes": st.Size(), "files": countFiles(m), "manifest": m})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "bundle %s: %d files, %s (kubernetes %s, etcd %s)\n",
		out, countFiles(m), humanBytes(st.Size()), m.KubernetesVersion, m.EtcdVersion)
	return nil
}

func newBundleVerifyCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "verify BUNDLE|DIR",
		Short: "Check every file of a bundle or artifacts directory against its manifest",
		Long: `verify hashes every file and reports each one that is missing, corrupted
(expected and actual sha256), duplicated or not in the manifest. Exit code 1
when anything is wrong.`,
		Args: exactArgs(1, "a bundle file or an artifacts directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			path := args[0]
			st, err := os.Stat(path)
			if err != nil {
				return badInput(fmt.Errorf("bundle verify: %w", err))
			}
			var m *artifacts.Manifest
			if st.IsDir() {
				d, err := artifacts.OpenDir(path)
				if err != nil {
					return err
				}
				if err := d.VerifyAll(ctx); err != nil {
					return fmt.Errorf("artifacts directory %s: %w", path, err)
				}
				m = d.Manifest()
			} else if m, err = artifacts.VerifyBundle(ctx, path); err != nil {
				return err
			}
			if g.output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
					"path": path, "ok": true, "files": countFiles(m),
					"kubernetesVersion": m.KubernetesVersion, "etcdVersion": m.EtcdVersion})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK, %d files verified (kubernetes %s, etcd %s)\n",
				path, countFiles(m), m.KubernetesVersion, m.EtcdVersion)
			return nil
		},
	}
}

func newBundleInspectCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect BUNDLE|DIR",
		Short: "List the versions and files of a bundle or artifacts directory",
		Args:  exactArgs(1, "a bundle file or an artifacts directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			st, err := os.Stat(path)
			if err != nil {
				return badInput(fmt.Errorf("bundle inspect: %w", err))
			}
			var m *artifacts.Manifest
			present := map[string]bool{}
			if st.IsDir() {
				d, err := artifacts.OpenDir(path)
				if err != nil {
					return err
				}
				m = d.Manifest()
				for _, f := range m.Files {
					if _, err := os.Stat(filepath.Join(path, filepath.FromSlash(f.Path))); err == nil {
						present[f.Path] = true
					}
				}
			} else {
				var entries []artifacts.BundleEntry
				if m, entries, err = artifacts.InspectBundle(cmd.Context(), path); err != nil {
					return err
				}
				for _, e := range entries {
					present[e.Path] = true
				}
			}
			if g.output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"path": path, "manifest": m})
			}
			return printInspect(cmd.OutOrStdout(), path, m, present)
		},
	}
}

// printInspect shows what an operator checks before carrying a bundle over:
// versions, every file with its size and checksum prefix, and what is absent.
func printInspect(w io.Writer, path string, m *artifacts.Manifest, present map[string]bool) error {
	fmt.Fprintf(w, "%s\nkubernetes %s, etcd %s, arch %s\n\n", path, m.KubernetesVersion, m.EtcdVersion, m.Arch)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tCOMPONENT\tVERSION\tSIZE\tSHA256\tPATH")
	var pkgs, absent []string
	for _, f := range m.Files {
		if !f.HasFile() {
			pkgs = append(pkgs, f.Package)
			continue
		}
		if !present[f.Path] {
			absent = append(absent, f.Name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Component, f.Version, humanBytes(f.Size), short(f.SHA256), f.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(m.Images) > 0 {
		fmt.Fprintln(w, "\nimages:")
		for _, img := range m.Images {
			fmt.Fprintf(w, "  %s (%s, %s)\n", img.Name, img.File, img.Digest)
		}
	}
	if len(pkgs) > 0 {
		fmt.Fprintf(w, "\nOS packages installed on nodes: %s\n", strings.Join(pkgs, ", "))
	}
	if len(absent) > 0 {
		fmt.Fprintf(w, "\nNOT PRESENT (listed in the manifest): %s\n", strings.Join(absent, ", "))
	}
	return nil
}

func countFiles(m *artifacts.Manifest) int {
	n := 0
	for _, f := range m.Files {
		if f.HasFile() {
			n++
		}
	}
	return n
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

// exactArgs is cobra.ExactArgs with a message that says what is missing, as a
// bad-input error (exit code 2).
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return badInput(fmt.Errorf("%s: want %s, got %d arguments", cmd.CommandPath(), what, len(args)))
		}
		return nil
	}
}

// downloadCacheDir picks where upstream downloads are kept between runs.
func downloadCacheDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := os.Getenv("KUBEWRIGHT_CACHE"); v != "" {
		return v, nil
	}
	if os.Geteuid() == 0 {
		return "/var/cache/kubewright", nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("pick a download cache (set --cache-dir): %w", err)
	}
	return filepath.Join(dir, "kubewright"), nil
}

// bundleLogger reports downloads on stderr: one line per file, every retry
// with --verbose.
func bundleLogger(cmd *cobra.Command, g *globalOptions) *slog.Logger {
	level := slog.LevelInfo
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}
