package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSHandshake runs a real TLS server on loopback with the apiserver
// certificate, requiring client certificates from the cluster CA, and
// connects with admin.conf's credentials, verifying the server by IP SAN and
// by DNS SAN. Wrong names and a client from another CA must fail.
func TestTLSHandshake(t *testing.T) {
	// crypto/tls checks validity against the real clock, so issue with it.
	st := NewStore(filepath.Join(t.TempDir(), "pki"), time.Now)
	spec := testSpec(t, 2)
	mustEnsure(t, st, spec)

	serverPair, err := tls.LoadX509KeyPair(filepath.Join(st.Dir(), "apiserver.crt"), filepath.Join(st.Dir(), "apiserver.key"))
	if err != nil {
		t.Fatal(err)
	}
	clusterCA := poolOf(t, st, "ca")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverPair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clusterCA,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type peer struct {
		subject string
		err     error
	}
	peers := make(chan peer, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				err := tc.Handshake()
				p := peer{err: err}
				if err == nil {
					p.subject = subjectString(tc.ConnectionState().PeerCertificates[0].Subject)
					_, err = tc.Write([]byte("ok"))
					p.err = err
				}
				peers <- p
			}()
		}
	}()

	admin := readKubeconfig(t, st.AdminKubeconfigPath())
	adminPair, err := tls.X509KeyPair(admin.ClientCertPEM, admin.ClientKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	adminRoots := x509.NewCertPool()
	if !adminRoots.AppendCertsFromPEM(admin.CAPEM) {
		t.Fatal("admin.conf CA data is not PEM")
	}
	hcPair, err := tls.LoadX509KeyPair(filepath.Join(st.Dir(), "etcd/healthcheck-client.crt"), filepath.Join(st.Dir(), "etcd/healthcheck-client.key"))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		serverName string
		client     tls.Certificate
		wantErr    string // substring of the client-side error, "" for success
	}{
		{"by IP SAN 127.0.0.1", "127.0.0.1", adminPair, ""},
		{"by DNS SAN kubernetes.default.svc.corp.local", "kubernetes.default.svc.corp.local", adminPair, ""},
		{"by DNS SAN of a master", "m2", adminPair, ""},
		{"by the VIP's IP SAN", "192.0.2.100", adminPair, ""},
		{"name not in the certificate", "evil.example", adminPair, "certificate is valid for"},
		{"IP not in the certificate", "10.0.0.99", adminPair, "not 10.0.0.99"},
		{"client from the etcd CA", "127.0.0.1", hcPair, "remote error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := tc.client
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
				RootCAs: adminRoots,
				// Always present the certificate: crypto/tls would otherwise
				// withhold one the server's CA list does not name.
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &client, nil },
				ServerName:           tc.serverName,
				MinVersion:           tls.VersionTLS12,
			})
			if err == nil {
				// TLS 1.3 reports a rejected client certificate on first read.
				buf := make([]byte, 2)
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Read(buf)
				if err == nil && string(buf) != "ok" {
					err = errors.New("unexpected reply " + string(buf))
				}
				conn.Close()
			}
			// Every connection yields exactly one server-side result.
			var p peer
			select {
			case p = <-peers:
			case <-time.After(5 * time.Second):
				t.Fatal("server never finished the handshake")
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				if p.err != nil || p.subject != "CN=kubernetes-admin,O=kubeadm:cluster-admins" {
					t.Errorf("server saw subject %q, err %v", p.subject, p.err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if tc.name == "client from the etcd CA" {
				if p.err == nil || !strings.Contains(p.err.Error(), "unknown authority") {
					t.Errorf("server side: %v", p.err)
				}
			}
		})
	}
}
