package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// newKeyPair returns an ed25519 key as OpenSSH private key PEM and
// authorized_keys line.
func newKeyPair(comment string) (priv []byte, pub []byte, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		return nil, nil, err
	}
	spk, err := ssh.NewPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spk)))
	if comment != "" {
		line += " " + comment
	}
	return pem.EncodeToMemory(block), []byte(line + "\n"), nil
}

// ensureLabKey creates the lab's client key once; later runs reuse it so
// machines that survived keep accepting it.
func ensureLabKey(privPath, lab string) (pub []byte, err error) {
	if b, err := os.ReadFile(privPath + ".pub"); err == nil {
		if _, err := os.Stat(privPath); err == nil {
			return b, nil
		}
	}
	priv, pub, err := newKeyPair("kubewright-lab-" + lab)
	if err != nil {
		return nil, fmt.Errorf("generate lab key: %w", err)
	}
	if err := writeFileAtomic(privPath, priv, 0o600); err != nil {
		return nil, fmt.Errorf("write lab key: %w", err)
	}
	if err := writeFileAtomic(privPath+".pub", pub, 0o644); err != nil {
		return nil, fmt.Errorf("write lab key: %w", err)
	}
	return pub, nil
}

// knownHostsLines renders one line per machine, listing both its name and
// address so `ssh NAME` and `ssh ADDRESS` are checked strictly.
func knownHostsLines(entries []knownHost) ([]byte, error) {
	var b strings.Builder
	for _, e := range entries {
		pk, _, _, _, err := ssh.ParseAuthorizedKey(e.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("host key of %s: %w", e.Name, err)
		}
		b.WriteString(knownhosts.Line([]string{e.Address, e.Name}, pk))
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

type knownHost struct {
	Name, Address string
	PublicKey     []byte // authorized_keys format
}

// clientConfig is the SSH client every lab check uses: the lab key, root,
// and strict host-key checking against the lab's known_hosts.
func clientConfig(keyFile, knownHostsFile string) (*ssh.ClientConfig, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read lab key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse lab key %s: %w", keyFile, err)
	}
	cb, err := knownhosts.New(knownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts %s: %w", knownHostsFile, err)
	}
	if cb == nil {
		return nil, errors.New("no known_hosts callback")
	}
	return &ssh.ClientConfig{
		User:              "root",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
	}, nil
}
