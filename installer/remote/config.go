package remote

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// Defaults for Config fields left zero. They live here, in one place, so the
// inventory documentation can quote them.
const (
	DefaultPort              = 22
	DefaultConnectTimeout    = 15 * time.Second
	DefaultKeepAliveInterval = 15 * time.Second
	DefaultKeepAliveCountMax = 3
	DefaultCommandTimeout    = 30 * time.Minute
	DefaultMaxSessions       = 8
	DefaultReconnectAttempts = 3
	DefaultReconnectBackoff  = 500 * time.Millisecond
)

// Config says how to reach one host. Secrets arrive already resolved (the
// inventory names environment variables; the caller reads them) except the key
// passphrase, which is read lazily so an unused key never needs one.
type Config struct {
	// Name is the inventory name; every error and log line carries it.
	Name    string
	Address string
	Port    int
	User    string

	// KeyFile is a private key (OpenSSH, PEM or PKCS#8). A passphrase-protected
	// key is decrypted with KeyPassphrase if set, else with the value of the
	// environment variable named by KeyPassphraseEnv.
	KeyFile          string
	KeyPassphraseEnv string
	KeyPassphrase    func(keyFile string) ([]byte, error)

	// UseAgent offers the keys of the ssh-agent at AgentSocket (default
	// $SSH_AUTH_SOCK).
	UseAgent    bool
	AgentSocket string

	// Password enables password and keyboard-interactive authentication.
	Password string
	// SudoPassword is written to sudo's stdin when a command needs root.
	SudoPassword string

	// Bastion is the jump host this host is reached through; it may have its
	// own Bastion (a chain). BastionHost, when set, is an already connected
	// jump host shared by many hosts (one connection to the bastion instead of
	// one per target) and takes precedence over Bastion.
	Bastion     *Config
	BastionHost *SSHHost

	// KnownHostsFile is the cluster's own known_hosts. Host keys are checked
	// strictly against it; a bastion without its own file uses its target's.
	KnownHostsFile string
	// AcceptNewHostKeys records keys of hosts missing from KnownHostsFile.
	// A key that differs from a recorded one is refused regardless.
	AcceptNewHostKeys bool
	// ReplaceHostKey accepts a key that differs from the recorded one for
	// this host only, and records it in place of the old one: the operator
	// verified the reinstalled host's new key out of band and named the host
	// (--replace-host-key NAME). It is never inherited by a bastion.
	ReplaceHostKey bool
	// NotInInventory marks a hop the inventory knows only by address (an
	// external bastion): --replace-host-key cannot name it, so a changed key
	// is fixed by removing the old one from known_hosts.
	NotInInventory bool

	ConnectTimeout time.Duration
	// KeepAliveInterval is how often keepalive@openssh.com is sent; after
	// KeepAliveCountMax unanswered intervals the connection is declared dead.
	// A negative interval disables keep-alives.
	KeepAliveInterval time.Duration
	KeepAliveCountMax int
	// CommandTimeout bounds each Exec unless the call sets WithTimeout.
	// A negative value disables the bound (the ctx still applies).
	CommandTimeout time.Duration
	// MaxSessions caps concurrent sessions on the one connection, below
	// OpenSSH's MaxSessions (10 by default) so callers queue instead of failing.
	MaxSessions int
	// ReconnectAttempts and ReconnectBackoff shape the one reconnect done when
	// the connection is found dead: attempts are spaced backoff, 2*backoff, ...
	ReconnectAttempts int
	ReconnectBackoff  time.Duration

	// Redactor collects secrets to strip from logs and errors; shared across
	// hosts it lets the engine redact its own logs too. Nil creates one.
	Redactor *Redactor
	// Logger receives one line per command (host=NAME); nil discards.
	Logger *slog.Logger
}

// Addr is address:port, as dialled.
func (c *Config) Addr() string {
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(c.Address, strconv.Itoa(port))
}

// label is "name (addr:port)", the form every error uses.
func (c *Config) label() string {
	if c.Name == "" || c.Name == c.Address {
		return c.Addr()
	}
	return fmt.Sprintf("%s (%s)", c.Name, c.Addr())
}

// withDefaults returns a copy with zero fields defaulted; the caller's Config
// is never modified.
func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Name == "" {
		c.Name = c.Address
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.KeepAliveInterval == 0 {
		c.KeepAliveInterval = DefaultKeepAliveInterval
	}
	if c.KeepAliveCountMax <= 0 {
		c.KeepAliveCountMax = DefaultKeepAliveCountMax
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.ReconnectAttempts <= 0 {
		c.ReconnectAttempts = DefaultReconnectAttempts
	}
	if c.ReconnectBackoff <= 0 {
		c.ReconnectBackoff = DefaultReconnectBackoff
	}
	if c.AgentSocket == "" {
		c.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if c.Redactor == nil {
		c.Redactor = NewRedactor()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Bastion != nil && c.Bastion.KnownHostsFile == "" {
		b := *c.Bastion
		b.KnownHostsFile = c.KnownHostsFile
		b.AcceptNewHostKeys = c.AcceptNewHostKeys
		c.Bastion = &b
	}
	if c.Bastion != nil && c.Bastion.Redactor == nil {
		b := *c.Bastion
		b.Redactor = c.Redactor
		c.Bastion = &b
	}
	if c.Bastion != nil && c.Bastion.Logger == nil {
		b := *c.Bastion
		b.Logger = c.Logger
		c.Bastion = &b
	}
	return c
}

// validate reports operator mistakes before any network traffic.
func (c *Config) validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("address is empty"))
	}
	if c.User == "" {
		errs = append(errs, errors.New("user is empty"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d is out of range 1-65535", c.Port))
	}
	if c.KnownHostsFile == "" {
		errs = append(errs, errors.New("no known_hosts file configured: host keys cannot be checked"))
	}
	if c.KeyFile == "" && !c.UseAgent && c.Password == "" {
		errs = append(errs, errors.New("no authentication method: set a key file, useAgent or passwordEnv"))
	}
	if c.UseAgent && c.AgentSocket == "" && c.KeyFile == "" && c.Password == "" {
		errs = append(errs, errors.New("useAgent is set but SSH_AUTH_SOCK is empty: start ssh-agent and add a key (ssh-add)"))
	}
	return errors.Join(errs...)
}
