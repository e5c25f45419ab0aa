package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kubewright/kubewright/installer/engine"
	"github.com/kubewright/kubewright/installer/inventory"
	"github.com/kubewright/kubewright/installer/pki"
	"github.com/kubewright/kubewright/installer/steps"
	goldenfile "github.com/kubewright/kubewright/internal/golden"
)

const certsInv = "testdata/certs-inventory.yaml"

// certsState writes a PKI for certsInv into a fresh state directory, issued
// at now, and returns the base state dir.
func certsState(t *testing.T, now time.Time) string {
	t.Helper()
	// Created by the store, 0700 like every state directory kubewright
	// makes (t.TempDir's own is 0755, which kubewright refuses).
	base := filepath.Join(t.TempDir(), "state")
	cl, err := inventory.Load(certsInv)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := pki.SpecFromCluster(cl)
	if err != nil {
		t.Fatal(err)
	}
	dir := steps.PKIDir(filepath.Join(base, "clusters", cl.Metadata.Name))
	if _, err := pki.NewStore(dir, func() time.Time { return now }).EnsureAll(spec); err != nil {
		t.Fatal(err)
	}
	return base
}

// datesRE masks what depends on the day the test runs: expiry dates and
// days left (checked numerically in the JSON test instead).
var datesRE = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+\d+|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// checkCertsGolden compares got with testdata/certs-NAME.golden (rewritten with -update).
func checkCertsGolden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.AssertString(t, filepath.Join("testdata", "certs-"+name+".golden"), got)
}

func TestCertsCheck(t *testing.T) {
	t.Setenv("TZ", "UTC")
	time.Local = time.UTC
	tests := []struct {
		name     string
		issued   time.Time
		args     []string
		wantErr  string
		problems int
	}{
		{name: "fresh", issued: time.Now(), args: nil},
		// Leaves live 1 year: issued 350 days ago they expire within 30 days.
		{name: "expiring", issued: time.Now().Add(-350 * 24 * time.Hour), wantErr: "certificates have problems", problems: 1},
		// A shorter window makes the same store pass.
		{name: "expiring-short-window", issued: time.Now().Add(-350 * 24 * time.Hour), args: []string{"--warn-within", "24h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := certsState(t, tc.issued)
			args := append([]string{"certs", "check", "-i", certsInv, "--state-dir", base}, tc.args...)
			out, _, err := runCLI(t, args...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("certs check: %v\n%s", err, out)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || isBadInput(err)) {
				t.Fatalf("certs check error %v, want exit 1 with %q", err, tc.wantErr)
			}
			checkCertsGolden(t, "check-"+tc.name, datesRE.ReplaceAllString(out, "DATE"))

			jout, _, _ := runCLI(t, append(args, "-o", "json")...)
			var infos []pki.CertInfo
			if err := json.Unmarshal([]byte(jout), &infos); err != nil {
				t.Fatalf("json output: %v\n%s", err, jout)
			}
			withProblems := 0
			for _, ci := range infos {
				if len(ci.Problems) > 0 {
					withProblems++
				}
				if ci.IsCA && ci.DaysLeft < 3000 {
					t.Errorf("%s: CA with %d days left", ci.Name, ci.DaysLeft)
				}
			}
			if (withProblems > 0) != (tc.problems > 0) {
				t.Errorf("%d certificates with problems in JSON, want problems=%v", withProblems, tc.problems > 0)
			}
		})
	}
}

func TestCertsCheckBadInput(t *testing.T) {
	tests := []struct {
		name, want string
		args       []string
	}{
		{"no pki", "run kubewright install", []string{"certs", "check", "-i", certsInv, "--state-dir", t.TempDir()}},
		{"negative window", "must not be negative", []string{"certs", "check", "-i", certsInv, "--warn-within", "-1h"}},
		{"bad output", "want text or json", nil},
		{"renew unknown name", "unknown certificate", []string{"certs", "renew", "-i", certsInv, "etcd-ca"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = []string{"certs", "check", "-i", certsInv, "--state-dir", certsState(t, time.Now()), "-o", "yaml"}
			}
			_, _, err := runCLI(t, args...)
			if !isBadInput(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want bad input containing %q", err, tc.want)
			}
		})
	}
}

// hashTree fingerprints every file below dir so a test can tell whether
// anything changed.
func hashTree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %x", p, sha256.Sum256(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// With no host reachable, renew must fail in its preflight and leave the
// store exactly as it was: no certificate exists that no host has.
func TestCertsRenewUnreachableRenewsNothing(t *testing.T) {
	base := certsState(t, time.Now())
	dir := steps.PKIDir(filepath.Join(base, "clusters", "certtest"))
	before := hashTree(t, dir)
	out, _, err := runCLI(t, "certs", "renew", "-i", certsInv, "--state-dir", base, "--accept-new-host-keys")
	if err == nil || isBadInput(err) {
		t.Fatalf("renew with no reachable host: err %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"nothing was renewed", "master1", "master2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if after := hashTree(t, dir); after != before {
		t.Fatal("the PKI store changed although renew failed its preflight")
	}
	if bytes.Contains([]byte(out), []byte("renewed")) {
		t.Fatalf("renew printed renewed certificates:\n%s", out)
	}
}

func TestWriteRenewReport(t *testing.T) {
	base := certsState(t, time.Now())
	cl, err := inventory.Load(certsInv)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := pki.SpecFromCluster(cl)
	if err != nil {
		t.Fatal(err)
	}
	store := pki.NewStore(steps.PKIDir(filepath.Join(base, "clusters", "certtest")), nil)
	for _, tc := range []struct {
		name  string
		names []string
	}{{"all", nil}, {"apiserver", []string{"apiserver"}}, {"etcd-server", []string{"etcd-server"}}} {
		t.Run(tc.name, func(t *testing.T) {
			rep, restarts, err := store.Renew(spec, tc.names...)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			writeRenewReport(&b, rep, restarts)
			checkCertsGolden(t, "renew-report-"+tc.name, b.String())
		})
	}
}

func TestWriteRestarted(t *testing.T) {
	res := &engine.Result{Hosts: []*engine.HostResult{
		{Name: "master2", Steps: []*engine.StepResult{
			{Step: "etcd", Status: engine.StatusApplied, Changes: []engine.Change{
				{Action: "update", Object: "/etc/kubernetes/pki/etcd/server.crt"},
				{Action: "restart", Object: "etcd.service"},
			}},
			{Step: "etcd-health", Status: engine.StatusUnchanged},
			// A failed step restarted nothing that can be claimed.
			{Step: "control-plane", Status: engine.StatusFailed, Changes: []engine.Change{{Action: "restart", Object: "kube-apiserver.service"}}},
		}},
		{Name: "master1", Steps: []*engine.StepResult{
			{Step: "control-plane", Status: engine.StatusApplied, Changes: []engine.Change{
				{Action: "restart", Object: "kube-apiserver.service"},
				{Action: "start", Object: "kube-scheduler.service"},
			}},
		}},
		{Name: "master3", Steps: []*engine.StepResult{{Step: "etcd", Status: engine.StatusUnchanged}}},
	}}
	var b bytes.Buffer
	writeRestarted(&b, res)
	checkCertsGolden(t, "restarted", b.String())
}
