package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsLocks serialises appends per file within this process, so 500
// hosts accepted at once do not interleave lines. It holds locks, not options.
var knownHostsLocks sync.Map // path -> *sync.Mutex

func knownHostsLock(path string) *sync.Mutex {
	m, _ := knownHostsLocks.LoadOrStore(path, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// HostKeyError is a host key that was refused. Its message leaves out the
// host because Dial wraps it as "connect to NAME (ADDR): ...". Mismatch distinguishes a key
// that differs from a recorded one (possible attack, or a reinstalled host)
// from a host that is simply not yet known.
type HostKeyError struct {
	Name           string // inventory name, as --replace-host-key takes it
	Host           string // label: name (addr:port)
	KnownHostsFile string
	HostPattern    string // how the host appears in known_hosts, e.g. [10.0.0.1]:2222
	Offered        ssh.PublicKey
	Known          []knownhosts.KnownKey
	Mismatch       bool
	NotInInventory bool // no --replace-host-key NAME can name the host
}

func (e *HostKeyError) Error() string {
	offered := fmt.Sprintf("%s %s", e.Offered.Type(), ssh.FingerprintSHA256(e.Offered))
	if !e.Mismatch {
		return fmt.Sprintf("unknown host key: the host offered %s, which is not in %s; "+
			"verify the fingerprint out of band (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host), "+
			"then run again with --accept-new-host-keys to record it",
			offered, e.KnownHostsFile)
	}
	known := make([]string, 0, len(e.Known))
	for _, k := range e.Known {
		known = append(known, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	head := fmt.Sprintf("HOST KEY MISMATCH: the host offered %s but %s records %s; "+
		"this is either a man-in-the-middle attack or the host was reinstalled. "+
		"If the host was reinstalled, verify the new fingerprint out of band "+
		"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host), then ",
		offered, e.KnownHostsFile, strings.Join(known, ", "))
	remove := fmt.Sprintf("remove the old key with: ssh-keygen -f %q -R %q and run again with --accept-new-host-keys", e.KnownHostsFile, e.HostPattern)
	if e.NotInInventory {
		// A bastion outside the inventory: --replace-host-key takes only
		// inventory host names.
		return head + remove
	}
	return head + fmt.Sprintf("run again with --replace-host-key %s (or %s)", e.Name, remove)
}

// hostKeyChecker builds the strict callback for cfg and the host key
// algorithms to ask for, so a host that has an ed25519 key recorded is not
// reported as mismatched because it offered its ecdsa key first.
func hostKeyChecker(cfg *Config, log func(msg string, args ...any)) (ssh.HostKeyCallback, []string, error) {
	path := cfg.KnownHostsFile
	pattern := knownhosts.Normalize(cfg.Addr())
	load := func() (ssh.HostKeyCallback, error) {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return func(string, net.Addr, ssh.PublicKey) error {
				return &knownhosts.KeyError{}
			}, nil
		}
		cb, err := knownhosts.New(path)
		if err != nil {
			return nil, fmt.Errorf("read known_hosts %s: %w", path, err)
		}
		return cb, nil
	}
	cb, err := load()
	if err != nil {
		return nil, nil, err
	}
	algos := knownAlgorithms(cb, cfg.Addr())
	if cfg.ReplaceHostKey {
		// A reinstalled host may no longer have a key of the recorded type.
		algos = nil
	}

	check := func(_ string, _ net.Addr, key ssh.PublicKey) error {
		// Check the address we dialled, not the resolved remote address:
		// behind a bastion the latter is a channel, and the inventory
		// address is what the operator recorded.
		err := cb(cfg.Addr(), fakeAddr(cfg.Addr()), key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		hkErr := &HostKeyError{Name: cfg.Name, Host: cfg.label(), KnownHostsFile: path, HostPattern: pattern, Offered: key, Known: ke.Want, Mismatch: len(ke.Want) > 0, NotInInventory: cfg.NotInInventory}
		if hkErr.Mismatch && cfg.ReplaceHostKey {
			if err := replaceKnownHost(path, pattern, key); err != nil {
				return fmt.Errorf("replace host key of %s: %w", cfg.label(), err)
			}
			old := make([]string, 0, len(ke.Want))
			for _, k := range ke.Want {
				old = append(old, k.Key.Type()+" "+ssh.FingerprintSHA256(k.Key))
			}
			log("REPLACED changed host key as asked (--replace-host-key)", "file", path, "old", strings.Join(old, ", "), "new", key.Type()+" "+ssh.FingerprintSHA256(key))
			return nil
		}
		if hkErr.Mismatch || !cfg.AcceptNewHostKeys {
			return hkErr
		}
		if err := appendKnownHost(path, pattern, key, load); err != nil {
			return fmt.Errorf("record host key of %s: %w", cfg.label(), err)
		}
		log("recorded new host key", "file", path, "key", key.Type()+" "+ssh.FingerprintSHA256(key))
		return nil
	}
	return check, algos, nil
}

// appendKnownHost records key unless another goroutine did meanwhile; a
// concurrent different key for the same host is a mismatch, not a second line.
func appendKnownHost(path, pattern string, key ssh.PublicKey, load func() (ssh.HostKeyCallback, error)) error {
	mu := knownHostsLock(path)
	mu.Lock()
	defer mu.Unlock()
	cb, err := load()
	if err != nil {
		return err
	}
	if err := cb(pattern, fakeAddr(pattern), key); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(knownhosts.Line([]string{pattern}, key) + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replaceKnownHost drops pattern from every plain line of path that lists
// it (a line that lists only it goes; marker lines such as @revoked and
// hashed entries are kept) and records key for it, rewriting the file
// atomically.
func replaceKnownHost(path, pattern string, key ssh.PublicKey) error {
	mu := knownHostsLock(path)
	mu.Lock()
	defer mu.Unlock()
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], "@") {
			out = append(out, line)
			continue
		}
		hosts := strings.Split(f[0], ",")
		kept := hosts[:0]
		for _, h := range hosts {
			if h != pattern {
				kept = append(kept, h)
			}
		}
		switch {
		case len(kept) == len(hosts):
			out = append(out, line)
		case len(kept) > 0:
			out = append(out, strings.Join(kept, ",")+strings.TrimPrefix(strings.TrimLeft(line, " \t"), f[0]))
		}
	}
	out = append(out, knownhosts.Line([]string{pattern}, key))
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(strings.Join(out, "\n") + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// knownAlgorithms asks the callback which keys it holds for addr (by offering
// a key it cannot know) and returns the matching host key algorithms, or nil
// to let the client offer its defaults.
func knownAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	err := cb(addr, fakeAddr(addr), probeKey)
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		var list []string
		switch k.Key.Type() {
		case ssh.KeyAlgoRSA:
			list = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		default:
			list = []string{k.Key.Type()}
		}
		for _, a := range list {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// probeKey is a syntactically valid key nobody has in known_hosts.
var probeKey = func() ssh.PublicKey {
	k, err := ssh.ParsePublicKey(probeKeyWire)
	if err != nil {
		panic(err)
	}
	return k
}()

// ssh-ed25519 with an all-zero public point: never a real host key.
var probeKeyWire = append([]byte{0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2', '5', '5', '1', '9', 0, 0, 0, 32}, make([]byte, 32)...)
