// Package kube holds kubewright's client-go helpers: building clients from the
// kubeconfigs kubewright generated, waiting for the API, creating the objects a
// kubeadm-style bootstrap needs, and server-side apply of add-on manifests.
// Everything talks to the API server; nothing shells out to kubectl.
package kube

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager is the server-side apply field manager for everything
// kubewright applies, so ownership conflicts name kubewright.
const FieldManager = "kubewright"

// Client bundles the typed clientset with the REST config it came from.
type Client struct {
	Config    *rest.Config
	Clientset kubernetes.Interface
}

// NewClient builds a client from kubeconfig bytes (admin.conf).
func NewClient(kubeconfig []byte) (*Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubewright"
	cfg.Timeout = 30 * time.Second
	return NewClientFromConfig(cfg)
}

// NewClientFromConfig builds a client from a REST config, e.g. one whose
// timeout the caller tuned.
func NewClientFromConfig(cfg *rest.Config) (*Client, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build clientset for %s: %w", cfg.Host, err)
	}
	return &Client{Config: cfg, Clientset: cs}, nil
}

// WaitReadyz polls GET <server>/readyz anonymously (health paths allow
// anonymous access) until it answers 200 "ok" or ctx ends. interval must be > 0.
// It returns the last error seen so a timeout says why (refused, 500 with the
// failing checks, TLS error) instead of only "deadline exceeded".
func WaitReadyz(ctx context.Context, server string, interval time.Duration) error {
	hc := &http.Client{
		Timeout: 5 * time.Second,
		// Health probing only: the caller verifies identity on real requests.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec
	}
	defer hc.CloseIdleConnections()
	var last error
	for {
		err := probe(ctx, hc, server+"/readyz")
		if err == nil {
			return nil
		}
		// A probe cut short by the deadline says nothing about the server:
		// keep the answer before it, which is what the operator needs.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s/readyz: %w (last: %v)", server, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}

func probe(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, buf[:n])
	}
	return nil
}

// ErrNotReady is returned by helpers that give up waiting for an object.
var ErrNotReady = errors.New("not ready")
