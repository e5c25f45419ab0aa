package pki

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// KubeconfigData is one cluster, one user and one context: the shape of every
// kubeconfig this package writes.
type KubeconfigData struct {
	ClusterName   string
	Server        string
	CAPEM         []byte
	User          string
	ClientCertPEM []byte
	ClientKeyPEM  []byte
}

// ContextName follows kubeadm's user@cluster convention, so merged contexts
// of several clusters stay distinct.
func (k KubeconfigData) ContextName() string { return k.User + "@" + k.ClusterName }

// kubeconfigFile mirrors the kubeconfig v1 schema (k8s.io/client-go/tools/
// clientcmd/api/v1) for the fields we write; client-go decodes the *-data
// fields as base64 of the PEM bytes.
type kubeconfigFile struct {
	APIVersion     string         `yaml:"apiVersion"`
	Kind           string         `yaml:"kind"`
	Clusters       []namedCluster `yaml:"clusters"`
	Contexts       []namedContext `yaml:"contexts"`
	CurrentContext string         `yaml:"current-context"`
	Preferences    struct{}       `yaml:"preferences"`
	Users          []namedUser    `yaml:"users"`
}

type namedCluster struct {
	Name    string      `yaml:"name"`
	Cluster clusterInfo `yaml:"cluster"`
}

type clusterInfo struct {
	CertificateAuthorityData string `yaml:"certificate-authority-data,omitempty"`
	Server                   string `yaml:"server"`
}

type namedContext struct {
	Name    string      `yaml:"name"`
	Context contextInfo `yaml:"context"`
}

type contextInfo struct {
	Cluster string `yaml:"cluster"`
	User    string `yaml:"user"`
}

type namedUser struct {
	Name string   `yaml:"name"`
	User userInfo `yaml:"user"`
}

type userInfo struct {
	ClientCertificateData string `yaml:"client-certificate-data,omitempty"`
	ClientKeyData         string `yaml:"client-key-data,omitempty"`
}

// RenderKubeconfig writes a kubeconfig with embedded credentials. The output
// is a pure function of the input, which is what lets EnsureAll tell whether
// an existing file is up to date by comparing bytes.
func RenderKubeconfig(k KubeconfigData) ([]byte, error) {
	if k.ClusterName == "" || k.Server == "" || k.User == "" || len(k.CAPEM) == 0 {
		return nil, errors.New("render kubeconfig: cluster name, server, user and CA are required")
	}
	enc := base64.StdEncoding.EncodeToString
	f := kubeconfigFile{
		APIVersion:     "v1",
		Kind:           "Config",
		Clusters:       []namedCluster{{Name: k.ClusterName, Cluster: clusterInfo{CertificateAuthorityData: enc(k.CAPEM), Server: k.Server}}},
		Contexts:       []namedContext{{Name: k.ContextName(), Context: contextInfo{Cluster: k.ClusterName, User: k.User}}},
		CurrentContext: k.ContextName(),
		Users:          []namedUser{{Name: k.User, User: userInfo{ClientCertificateData: enc(k.ClientCertPEM), ClientKeyData: enc(k.ClientKeyPEM)}}},
	}
	var buf bytes.Buffer
	e := yaml.NewEncoder(&buf)
	e.SetIndent(2)
	if err := e.Encode(f); err != nil {
		return nil, fmt.Errorf("render kubeconfig: %w", err)
	}
	if err := e.Close(); err != nil {
		return nil, fmt.Errorf("render kubeconfig: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseKubeconfig reads a kubeconfig of the shape RenderKubeconfig writes:
// the current context's cluster and user, with embedded data.
func ParseKubeconfig(data []byte) (KubeconfigData, error) {
	var f kubeconfigFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return KubeconfigData{}, fmt.Errorf("parse kubeconfig: %w", err)
	}
	if f.Kind != "Config" {
		return KubeconfigData{}, fmt.Errorf("parse kubeconfig: kind %q, want Config", f.Kind)
	}
	var ctx *contextInfo
	for i := range f.Contexts {
		if f.Contexts[i].Name == f.CurrentContext {
			ctx = &f.Contexts[i].Context
		}
	}
	if ctx == nil {
		return KubeconfigData{}, fmt.Errorf("parse kubeconfig: current context %q not found", f.CurrentContext)
	}
	out := KubeconfigData{ClusterName: ctx.Cluster, User: ctx.User}
	dec := func(field, s string) ([]byte, error) {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("parse kubeconfig: %s: %w", field, err)
		}
		return b, nil
	}
	found := false
	for _, c := range f.Clusters {
		if c.Name != ctx.Cluster {
			continue
		}
		found = true
		out.Server = c.Cluster.Server
		ca, err := dec("certificate-authority-data", c.Cluster.CertificateAuthorityData)
		if err != nil {
			return KubeconfigData{}, err
		}
		out.CAPEM = ca
	}
	if !found {
		return KubeconfigData{}, fmt.Errorf("parse kubeconfig: cluster %q not found", ctx.Cluster)
	}
	found = false
	for _, u := range f.Users {
		if u.Name != ctx.User {
			continue
		}
		found = true
		var err error
		if out.ClientCertPEM, err = dec("client-certificate-data", u.User.ClientCertificateData); err != nil {
			return KubeconfigData{}, err
		}
		if out.ClientKeyPEM, err = dec("client-key-data", u.User.ClientKeyData); err != nil {
			return KubeconfigData{}, err
		}
	}
	if !found {
		return KubeconfigData{}, fmt.Errorf("parse kubeconfig: user %q not found", ctx.User)
	}
	return out, nil
}
