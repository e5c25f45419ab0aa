package inventory

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "node1", want: []string{"node1"}},
		{in: "node[01:03]", want: []string{"node01", "node02", "node03"}},
		{in: "node[8:11]", want: []string{"node8", "node9", "node10", "node11"}},
		{in: "node[098:101]", want: []string{"node098", "node099", "node100", "node101"}},
		{in: "[1:2]-x", want: []string{"1-x", "2-x"}},
		{in: "10.0.1.[11:12]", want: []string{"10.0.1.11", "10.0.1.12"}},
		{in: "n[5:5]", want: []string{"n5"}},
		{in: "n[1:3", wantErr: "missing the closing"},
		{in: "n1:3]", wantErr: "no \"[\""},
		{in: "n][1:3", wantErr: "before"},
		{in: "n[1-3]", wantErr: "[start:end]"},
		{in: "n[:3]", wantErr: "decimal"},
		{in: "n[-1:3]", wantErr: "decimal"},
		{in: "n[3:1]", wantErr: "starts after it ends"},
		{in: "n[1:2]x[1:2]", wantErr: "more than one"},
		{in: "n[1:9999999]", wantErr: "too large"},
		{in: "n[1:6000]", wantErr: "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expand(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("expand(%q) error = %v, want it to mention %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("expand(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	fields := []string{"name", "address", "internalAddress", "port", "routerID", "worker1", "master1"}
	tests := []struct{ word, want string }{
		{"adress", "address"},
		{"routerId", "routerID"}, // case only
		{"wroker1", "worker1"},   // transposition counts once
		{"internaladdres", "internalAddress"},
		{"prot", "port"},
		{"colour", ""},
		{"x", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			if got := suggest(tt.word, fields); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
	if d := levenshtein("kitten", "sitting"); d != 3 {
		t.Errorf("levenshtein(kitten, sitting) = %d, want 3", d)
	}
}

const selectInv = `
apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata: {name: sel}
spec:
  hosts:
    - {name: jump, address: 10.0.0.5, bastion: "ops@gw.example.com"}
    - {name: w2, address: 10.0.0.22, labels: {zone: b}}
    - {name: m1, address: 10.0.0.11, labels: {zone: a}, bastion: jump}
    - {name: m2, address: 10.0.0.12, labels: {zone: b}, bastion: jump}
    - {name: m3, address: 10.0.0.13, labels: {zone: a}}
    - {name: w1, address: 10.0.0.21, labels: {zone: a}}
  groups:
    masters: [m3, m1, m2]
    workers: [w1, w2]
    edge: [w2]
  controlPlaneEndpoint: {vip: 10.0.0.10}
`

func mustParse(t *testing.T, src string) *Cluster {
	t.Helper()
	c, _, err := Parse("sel.yaml", []byte(src), WithLookupEnv(fakeEnv))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func names(hs []*Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

func TestSelect(t *testing.T) {
	c := mustParse(t, selectInv)
	tests := []struct {
		sel     string
		want    []string
		wantErr string
	}{
		{sel: "all", want: []string{"w2", "m1", "m2", "m3", "w1"}}, // jump is only a bastion
		{sel: "masters", want: []string{"m1", "m2", "m3"}},         // file order, not group order
		{sel: "etcd", want: []string{"m1", "m2", "m3"}},
		{sel: "workers", want: []string{"w2", "w1"}},
		{sel: "masters, edge", want: []string{"w2", "m1", "m2", "m3"}},
		{sel: "zone=a", want: []string{"m1", "m3", "w1"}},
		{sel: "zone=c", want: nil},
		{sel: "masters,!m2", want: []string{"m1", "m3"}},
		{sel: "!workers", want: []string{"m1", "m2", "m3"}},
		{sel: "jump", want: []string{"jump"}},
		{sel: "m3,m3,m1", want: []string{"m1", "m3"}},
		{sel: "mastres", wantErr: `"mastres" is not a group or host in the inventory (did you mean "masters"?)`},
		{sel: "masters,", wantErr: "empty term"},
		{sel: "", wantErr: "empty term"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			got, err := c.Select(tt.sel)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Select(%q) error = %v, want %q", tt.sel, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := names(got); !slices.Equal(g, tt.want) {
				t.Errorf("Select(%q) = %v, want %v", tt.sel, g, tt.want)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	c := mustParse(t, selectInv)
	if h := c.Host("m2"); h == nil || h.Address != "10.0.0.12" {
		t.Fatalf("Host(m2) = %+v", h)
	}
	if c.Host("nope") != nil {
		t.Error("Host(nope) should be nil")
	}
	m1 := c.Host("m1")
	if !slices.Equal(m1.Groups, []string{"etcd", "masters"}) || !m1.IsIn("masters") || m1.IsIn("workers") {
		t.Errorf("m1.Groups = %v", m1.Groups)
	}
	if got := names(c.Workers()); !slices.Equal(got, []string{"w2", "w1"}) {
		t.Errorf("Workers() = %v", got)
	}
	if got := c.Endpoint(); got != "10.0.0.10:8443" {
		t.Errorf("Endpoint() = %q", got)
	}
	if ip, err := c.APIServerServiceIP(); err != nil || ip.String() != "10.96.0.1" {
		t.Errorf("APIServerServiceIP() = %v, %v", ip, err)
	}
	if ip, err := c.ClusterDNSIP(); err != nil || ip.String() != "10.96.0.10" {
		t.Errorf("ClusterDNSIP() = %v, %v", ip, err)
	}

	// m2 -> jump -> ops@gw.example.com: outermost hop first.
	chain, err := c.BastionChain(c.Host("m2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || chain[0].Host != nil || chain[0].User != "ops" || chain[0].Address != "gw.example.com" || chain[0].Port != 22 ||
		chain[1].Host == nil || chain[1].Host.Name != "jump" || chain[1].Address != "10.0.0.5" {
		t.Errorf("BastionChain(m2) = %+v", chain)
	}
	if chain, err := c.BastionChain(c.Host("w1")); err != nil || len(chain) != 0 {
		t.Errorf("BastionChain(w1) = %v, %v; want direct", chain, err)
	}

	// A cluster built in memory (no Parse) still answers: etcd falls back to masters.
	mem := &Cluster{Spec: Spec{
		Hosts:  []Host{{Name: "a"}, {Name: "b"}},
		Groups: map[string][]string{GroupMasters: {"b"}},
	}}
	if got := names(mem.Etcd()); !slices.Equal(got, []string{"b"}) {
		t.Errorf("in-memory Etcd() = %v", got)
	}
}

// TestExpandedHostsAreIndependent guards against hosts from one range
// sharing a labels map: changing one must not change its siblings.
func TestExpandedHostsAreIndependent(t *testing.T) {
	c := mustParse(t, `
apiVersion: kubewright.io/v1alpha1
kind: Cluster
metadata: {name: r}
spec:
  hosts:
    - name: n[1:2]
      address: 10.0.0.[11:12]
      labels: {a: b}
  groups: {masters: ["n[1:2]"]}
  controlPlaneEndpoint: {vip: 10.0.0.10}
`)
	c.Host("n1").Labels["a"] = "changed"
	if c.Host("n2").Labels["a"] != "b" {
		t.Error("hosts expanded from one range share their labels map")
	}
}

func TestLoad(t *testing.T) {
	c, err := Load("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != "testdata/good/minimal.yaml" || c.Metadata.Name != "mini" {
		t.Errorf("Load = path %q name %q", c.Path, c.Metadata.Name)
	}
	// Relative paths in the file are relative to the file.
	c, err = Load("testdata/good/ranges.yaml", WithLookupEnv(fakeEnv))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Host("node08").KeyFile; got != "testdata/good/keys/id_ed25519" {
		t.Errorf("keyFile = %q, want it resolved against the inventory's directory", got)
	}
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "read inventory") {
		t.Errorf("Load(missing) error = %v", err)
	}
	_, err = Load("testdata/bad/duplicates.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Errors[0].File != "testdata/bad/duplicates.yaml" {
		t.Fatalf("Load(bad) error = %v", err)
	}
	// The aggregate message lists every error, one per line.
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(ve.Errors)+1 || !strings.HasPrefix(lines[0], "inventory has 3 errors") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestWarningUsesEnvironment(t *testing.T) {
	src := strings.Replace(selectInv, "spec:\n", "spec:\n  hostDefaults: {passwordEnv: KW_PW}\n", 1)
	_, warns, err := Parse("w.yaml", []byte(src), WithLookupEnv(func(string) (string, bool) { return "", false }))
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0].Msg, "KW_PW is not set") {
		t.Fatalf("unset: warns=%v err=%v", warns, err)
	}
	_, warns, err = Parse("w.yaml", []byte(src), WithLookupEnv(func(n string) (string, bool) { return "pw", n == "KW_PW" }))
	if err != nil || len(warns) != 0 {
		t.Fatalf("set: warns=%v err=%v", warns, err)
	}
}

// TestRenderJSON pins the JSON form, which also lists each host's groups.
func TestRenderJSON(t *testing.T) {
	c := mustParse(t, selectInv)
	out, err := c.Render(FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "testdata/select.json.golden", out)
	if _, err := c.Render("toml"); err == nil {
		t.Error("Render(toml) should fail")
	}
}
