package remote

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authSetup is what one dial offers, plus words for the error when the
// server accepts none of it.
type authSetup struct {
	methods []ssh.AuthMethod
	tried   []string
	closers []io.Closer
}

func (a *authSetup) close() {
	for _, c := range a.closers {
		c.Close()
	}
}

// buildAuth prepares key, agent and password methods in that order (the
// order OpenSSH uses), so a server with a low MaxAuthTries sees the most
// likely key first.
func buildAuth(cfg *Config) (*authSetup, error) {
	a := &authSetup{}
	var signers []ssh.Signer
	if cfg.KeyFile != "" {
		s, err := loadKey(cfg)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
		a.tried = append(a.tried, "key "+cfg.KeyFile)
	}
	if cfg.UseAgent {
		if cfg.AgentSocket == "" {
			if len(signers) == 0 && cfg.Password == "" {
				return nil, errors.New("useAgent is set but SSH_AUTH_SOCK is empty: start ssh-agent and add a key (ssh-add)")
			}
		} else {
			conn, err := net.Dial("unix", cfg.AgentSocket)
			if err != nil {
				return nil, fmt.Errorf("connect to ssh-agent at %s: %w", cfg.AgentSocket, err)
			}
			a.closers = append(a.closers, conn)
			ag := agent.NewClient(conn)
			agentSigners, err := ag.Signers()
			if err != nil {
				a.close()
				return nil, fmt.Errorf("list ssh-agent keys at %s: %w", cfg.AgentSocket, err)
			}
			signers = append(signers, agentSigners...)
			a.tried = append(a.tried, fmt.Sprintf("ssh-agent (%d keys)", len(agentSigners)))
		}
	}
	if len(signers) > 0 {
		a.methods = append(a.methods, ssh.PublicKeys(signers...))
	}
	if cfg.Password != "" {
		pw := cfg.Password
		a.methods = append(a.methods, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
		a.tried = append(a.tried, "password")
	}
	if len(a.methods) == 0 {
		a.close()
		return nil, errors.New("no authentication method: set a key file, useAgent or passwordEnv")
	}
	return a, nil
}

// loadKey reads cfg.KeyFile, asking for a passphrase only when the key is
// encrypted.
func loadKey(cfg *Config) (ssh.Signer, error) {
	pem, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err == nil {
		return s, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, fmt.Errorf("parse key file %s: %w", cfg.KeyFile, err)
	}
	var pass []byte
	switch {
	case cfg.KeyPassphrase != nil:
		pass, err = cfg.KeyPassphrase(cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("get passphrase for key %s: %w", cfg.KeyFile, err)
		}
	case cfg.KeyPassphraseEnv != "":
		v, ok := os.LookupEnv(cfg.KeyPassphraseEnv)
		if !ok {
			return nil, fmt.Errorf("key %s is passphrase-protected and environment variable %s is not set: export it, or load the key into ssh-agent and set useAgent", cfg.KeyFile, cfg.KeyPassphraseEnv)
		}
		pass = []byte(v)
	default:
		return nil, fmt.Errorf("key %s is passphrase-protected: set keyPassphraseEnv to the name of a variable holding the passphrase, or load the key into ssh-agent (ssh-add) and set useAgent", cfg.KeyFile)
	}
	cfg.Redactor.Add(string(pass))
	s, err = ssh.ParsePrivateKeyWithPassphrase(pem, pass)
	if err != nil {
		if errors.Is(err, x509.IncorrectPasswordError) || strings.Contains(err.Error(), "decryption password incorrect") {
			return nil, fmt.Errorf("wrong passphrase for key %s", cfg.KeyFile)
		}
		return nil, fmt.Errorf("decrypt key %s: %w", cfg.KeyFile, err)
	}
	return s, nil
}

// authFailure turns x/crypto's "unable to authenticate" into what was tried
// and what to do about it.
func authFailure(cfg *Config, a *authSetup, err error) error {
	if !strings.Contains(err.Error(), "unable to authenticate") {
		return err
	}
	return fmt.Errorf("authentication as user %q failed (tried: %s): "+
		"check that the public key is in ~%s/.ssh/authorized_keys on the host, that the user exists, "+
		"or set passwordEnv if the host only allows passwords: %w",
		cfg.User, strings.Join(a.tried, ", "), cfg.User, err)
}
