// Package kubetest starts a real etcd and kube-apiserver on loopback for
// tests, from the binaries `make artifacts` builds. There is no
// controller-manager, scheduler or kubelet: objects are stored, validated,
// defaulted and admitted for real, but nothing reconciles them.
package kubetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// APIServer is a running etcd + kube-apiserver pair.
type APIServer struct {
	// Config authenticates as an admin: a client certificate in group
	// system:masters, signed by a CA made for this server.
	Config *rest.Config
	// URL is the apiserver's https://127.0.0.1:port.
	URL string
	// Dir holds certificates, etcd's data and both logs.
	Dir string
}

// BinDir returns the directory with the built etcd and kube-apiserver:
// $KUBEWRIGHT_ARTIFACTS_DIR/bin, else the repository's _output/artifacts/bin,
// else /var/cache/kubewright/artifacts/latest/bin. It fails the test when
// none has the binaries: these tests must not pass silently without them.
func BinDir(t testing.TB) string {
	t.Helper()
	var candidates []string
	if d := os.Getenv("KUBEWRIGHT_ARTIFACTS_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "bin"))
	} else {
		if root, err := repoRoot(); err == nil {
			candidates = append(candidates, filepath.Join(root, "_output", "artifacts", "bin"))
		}
		candidates = append(candidates, "/var/cache/kubewright/artifacts/latest/bin")
	}
	for _, d := range candidates {
		if isExecutable(filepath.Join(d, "kube-apiserver")) && isExecutable(filepath.Join(d, "etcd")) {
			return d
		}
	}
	t.Fatalf("no etcd and kube-apiserver in %s (run `make artifacts`, or set KUBEWRIGHT_ARTIFACTS_DIR)", strings.Join(candidates, ", "))
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("no go.mod above the working directory")
		}
		d = parent
	}
}

// Start runs etcd and kube-apiserver on 127.0.0.1 with fresh ports, waits
// for /readyz, and stops both (by PID) when the test ends, logging the tail
// of their logs if the test failed.
func Start(t testing.TB) *APIServer {
	t.Helper()
	bin := BinDir(t)
	dir := t.TempDir()
	p, err := writePKI(dir)
	if err != nil {
		t.Fatalf("kubetest: make certificates: %v", err)
	}

	etcdLog := filepath.Join(dir, "etcd.log")
	var etcdURL string
	etcd := startRetrying(t, "etcd", etcdLog, func() (*exec.Cmd, string, error) {
		client, peer := freePort(), freePort()
		if client == 0 || peer == 0 {
			return nil, "", errors.New("no free port on 127.0.0.1")
		}
		etcdURL = fmt.Sprintf("http://127.0.0.1:%d", client)
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
		cmd := exec.Command(filepath.Join(bin, "etcd"),
			"--name=kubetest",
			"--data-dir="+filepath.Join(dir, "etcd-data"),
			"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
			"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
			"--initial-cluster=kubetest="+peerURL,
			// Test data: durability across power loss buys nothing here.
			"--unsafe-no-fsync",
		)
		return cmd, etcdURL + "/health", nil
	}, nil)
	t.Cleanup(func() { etcd.stop(t) })

	apiLog := filepath.Join(dir, "kube-apiserver.log")
	var url string
	api := startRetrying(t, "kube-apiserver", apiLog, func() (*exec.Cmd, string, error) {
		port := freePort()
		url = fmt.Sprintf("https://127.0.0.1:%d", port)
		if port == 0 {
			return nil, "", errors.New("no free port on 127.0.0.1")
		}
		cmd := exec.Command(filepath.Join(bin, "kube-apiserver"),
			"--etcd-servers="+etcdURL,
			"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
			"--advertise-address=127.0.0.1",
			// The kubernetes Service's endpoints may not be loopback, and no
			// one here needs them.
			"--endpoint-reconciler-type=none",
			"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
			"--tls-cert-file="+p.serverCert, "--tls-private-key-file="+p.serverKey,
			"--client-ca-file="+p.caCert,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file="+p.saPub, "--service-account-signing-key-file="+p.saKey,
			"--authorization-mode=RBAC",
			"--service-cluster-ip-range=10.96.0.0/12",
			"--profiling=false",
		)
		return cmd, url + "/readyz", nil
	}, p.httpClient)
	t.Cleanup(func() { api.stop(t) })

	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{apiLog, etcdLog} {
				t.Logf("kubetest: last lines of %s:\n%s", f, tail(f, 12000))
			}
		}
	})
	return &APIServer{
		URL: url,
		Dir: dir,
		Config: &rest.Config{
			Host:    url,
			Timeout: 30 * time.Second,
			TLSClientConfig: rest.TLSClientConfig{
				CAData: p.caPEM, CertData: p.adminCertPEM, KeyData: p.adminKeyPEM,
			},
		},
	}
}

// process is one started binary.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// startRetrying starts a binary and waits until its health URL answers 200.
// A free port can be taken between choosing it and the bind, so a process
// that exits during startup is tried again with new ports, twice at most.
func startRetrying(t testing.TB, name, logPath string, build func() (*exec.Cmd, string, error), hc func() *http.Client) *process {
	t.Helper()
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		cmd, health, err := build()
		if err != nil {
			t.Fatalf("kubetest: %s: %v", name, err)
		}
		p, err := start(name, cmd, logPath)
		if err != nil {
			t.Fatalf("kubetest: %v", err)
		}
		client := &http.Client{Timeout: 3 * time.Second}
		if hc != nil {
			client = hc()
		}
		err = p.waitHealthy(health, client, 120*time.Second)
		client.CloseIdleConnections()
		if err == nil {
			t.Logf("kubetest: %s pid %d healthy at %s", name, p.cmd.Process.Pid, strings.TrimSuffix(strings.TrimSuffix(health, "/readyz"), "/health"))
			return p
		}
		lastErr = err
		p.stop(t)
		if !p.exited() {
			break
		}
		t.Logf("kubetest: %s attempt %d: %v", name, attempt, err)
	}
	t.Fatalf("kubetest: %s: %v\nlast lines of %s:\n%s", name, lastErr, logPath, tail(logPath, 12000))
	return nil
}

func start(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "=== %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = f, f
	// If the test binary dies, take the servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: f}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) waitHealthy(url string, hc *http.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := errors.New("not probed yet")
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited during startup (%s); last probe: %v", p.name, p.cmd.ProcessState, last)
		}
		resp, err := hc.Get(url)
		if err == nil {
			body := make([]byte, 2048)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(body[:n]))
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %s: %v", p.name, timeout, last)
}

// stop sends SIGTERM to the process's PID and SIGKILL if it is still there
// after 10 s.
func (p *process) stop(t testing.TB) {
	defer p.log.Close()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("kubetest: %s pid %d ignored SIGTERM for 10s, killing it", p.name, p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0 // the caller's bind fails and says why
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// pki is the files and PEM a test server needs.
type pki struct {
	caCert, serverCert, serverKey, saKey, saPub string
	caPEM, adminCertPEM, adminKeyPEM            []byte
}

// httpClient probes /readyz as the admin, so readiness does not depend on
// anonymous access being allowed yet.
func (p *pki) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		panic(err) // made a few lines up; cannot fail
	}
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}
}

func writePKI(dir string) (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubetest-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leaf := func(serial int64, subject pkix.Name, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: subject,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), nil
	}
	srvCert, srvKey, err := leaf(2, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}, []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"})
	if err != nil {
		return nil, err
	}
	admCert, admKey, err := leaf(3, pkix.Name{CommonName: "kubetest-admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p := &pki{
		caCert: filepath.Join(dir, "ca.crt"), serverCert: filepath.Join(dir, "apiserver.crt"), serverKey: filepath.Join(dir, "apiserver.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), adminCertPEM: admCert, adminKeyPEM: admKey,
	}
	files := map[string][]byte{
		p.caCert: p.caPEM, p.serverCert: srvCert, p.serverKey: srvKey,
		p.saKey: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}),
		p.saPub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}),
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}
