package remote_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubewright/kubewright/installer/remote"
	"github.com/kubewright/kubewright/installer/remote/remotetest"
)

func TestSudo(t *testing.T) {
	const pw = "s3cr3t-'pw\"$x"
	tests := []struct {
		name       string
		serverPass string // "" = NOPASSWD sudo
		serverUser string
		clientPass string
		stdin      string
		cmd        string
		wantOut    string
		wantErr    string
		wantLines  []string // command line prefixes the server must have seen, in order
	}{
		{
			name: "password fed on stdin", serverPass: pw, clientPass: pw,
			cmd: `echo "$SUDO_USER"`, wantOut: "tester\n",
			wantLines: []string{"sudo -n true", "sudo -S -p '' -- sh -c "},
		},
		{
			name: "caller stdin follows the password", serverPass: pw, clientPass: pw,
			stdin: "payload\nline2\n", cmd: "cat", wantOut: "payload\nline2\n",
			wantLines: []string{"sudo -n true", "sudo -S -p '' -- sh -c cat"},
		},
		{
			name: "NOPASSWD sudo never sees the password on stdin", serverPass: "", clientPass: pw,
			stdin: "only-this", cmd: "cat", wantOut: "only-this",
			wantLines: []string{"sudo -n true", "sudo -n -- sh -c cat"},
		},
		{
			name: "no password configured uses sudo -n", serverPass: "", clientPass: "",
			cmd: `echo "$SUDO_USER"`, wantOut: "tester\n",
			wantLines: []string{"sudo -n -- sh -c "},
		},
		{
			name: "wrong password", serverPass: pw, clientPass: "wrong-one",
			cmd: "true", wantErr: "the sudo password was refused",
		},
		{
			name: "password required but not configured", serverPass: pw, clientPass: "",
			cmd: "true", wantErr: "sudo needs a password on this host: set sudoPasswordEnv",
		},
		{
			name: "root runs directly", serverPass: pw, serverUser: "root", clientPass: pw,
			cmd: `echo "sudo_user=$SUDO_USER"`, wantOut: "sudo_user=\n",
			wantLines: []string{`echo "sudo_user=$SUDO_USER"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []remotetest.Option{remotetest.WithSudo(tc.serverPass)}
			if tc.serverUser != "" {
				opts = append(opts, remotetest.WithUser(tc.serverUser))
			}
			srv := remotetest.NewServer(t, opts...)
			cfg := srv.Config("node1")
			cfg.SudoPassword = tc.clientPass
			var logs logBuf
			cfg.Logger = debugLogger(&logs)
			h := dial(t, cfg)
			execOpts := []remote.ExecOption{remote.WithSudo()}
			if tc.stdin != "" {
				execOpts = append(execOpts, remote.WithStdin(strings.NewReader(tc.stdin)))
			}
			out, err := h.Exec(context.Background(), tc.cmd, execOpts...)
			if tc.wantErr != "" {
				var ee *remote.ExitError
				if !errors.As(err, &ee) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ExitError with %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr == "" && out != tc.wantOut {
				t.Errorf("stdout = %q, want %q", out, tc.wantOut)
			}
			cmds := commands(srv)
			if tc.wantLines != nil {
				if len(cmds) != len(tc.wantLines) {
					t.Fatalf("server saw %q, want %d commands", cmds, len(tc.wantLines))
				}
				for i, prefix := range tc.wantLines {
					if !strings.HasPrefix(cmds[i], prefix) {
						t.Errorf("command %d = %q, want prefix %q", i, cmds[i], prefix)
					}
				}
			}
			for _, secret := range []string{pw, "wrong-one"} {
				for _, c := range cmds {
					if strings.Contains(c, secret) {
						t.Errorf("password on the command line: %q", c)
					}
				}
				if strings.Contains(logs.String(), secret) || (err != nil && strings.Contains(err.Error(), secret)) {
					t.Errorf("password in logs or error:\n%s\n%v", logs.String(), err)
				}
			}
			if !strings.Contains(logs.String(), `"host":"node1"`) {
				t.Errorf("log lines lack host=node1: %s", logs.String())
			}
		})
	}
}

// TestSudoProbeIsCached: the NOPASSWD probe runs once per host, not per command.
func TestSudoProbeIsCached(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithSudo("pw"))
	cfg := srv.Config("node1")
	h := dial(t, cfg)
	for i := 0; i < 3; i++ {
		mustExec(t, h, "true", remote.WithSudo())
	}
	probes := 0
	for _, c := range commands(srv) {
		if c == "sudo -n true" {
			probes++
		}
	}
	if probes != 1 || len(commands(srv)) != 4 {
		t.Errorf("commands = %q, want one probe and three commands", srv.Commands())
	}
}

func TestSecretsRedactedFromCommandOutput(t *testing.T) {
	srv := remotetest.NewServer(t, remotetest.WithSudo("topsecret"))
	cfg := srv.Config("node1")
	var logs logBuf
	cfg.Logger = debugLogger(&logs)
	h := dial(t, cfg)
	// A command that echoes the secret (e.g. a misbehaving script): the
	// caller gets the real output, logs and errors get it redacted.
	out, err := h.Exec(context.Background(), "echo topsecret; echo topsecret >&2; exit 2")
	if out != "topsecret\n" {
		t.Errorf("stdout = %q", out)
	}
	if err == nil || strings.Contains(err.Error(), "topsecret") || !strings.Contains(err.Error(), remote.Redacted) {
		t.Errorf("error not redacted: %v", err)
	}
	if strings.Contains(logs.String(), "topsecret") || !strings.Contains(logs.String(), remote.Redacted) {
		t.Errorf("logs not redacted: %s", logs.String())
	}
	if !h.Redactor().Contains("topsecret") {
		t.Errorf("host redactor does not know the sudo password")
	}
}
