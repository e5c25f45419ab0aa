package kube

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

func mustV(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want [3]int
	}{
		{"v1.37.2", true, [3]int{1, 37, 2}},
		{"v1.36.3-rc.1", true, [3]int{1, 36, 3}},
		{"v1.36.3+abc", true, [3]int{1, 36, 3}},
		{"1.37.2", false, [3]int{}},
		{"v1.37", false, [3]int{}},
		{"latest", false, [3]int{}},
		{"v1.37.2 ", false, [3]int{}},
	} {
		v, err := ParseVersion(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseVersion(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && [3]int{v.Major, v.Minor, v.Patch} != tc.want {
			t.Errorf("ParseVersion(%q) = %+v", tc.in, v)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	order := []string{"v1.9.9", "v1.36.3-rc.1", "v1.36.3", "v1.36.10", "v1.37.0", "v2.0.0"}
	for i := range order {
		for j := range order {
			got := mustV(t, order[i]).Compare(mustV(t, order[j]))
			want := sign(i - j)
			if i == j {
				want = 0
			}
			if got != want {
				t.Errorf("%s vs %s = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	if mustV(t, "v1.37.2+a").Compare(mustV(t, "v1.37.2+b")) != 0 {
		t.Error("build metadata must not order releases")
	}
}

func cluster(t *testing.T, api string, kubelets ...string) ClusterVersions {
	c := ClusterVersions{APIServer: mustV(t, api), Kubelets: map[string]Version{}}
	for i, k := range kubelets {
		c.Kubelets[string(rune('a'+i))] = mustV(t, k)
	}
	return c
}

func TestUpgradePasses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cur     ClusterVersions
		to      string
		via     []string
		step    bool
		want    string // passes joined by ","
		wantErr string
	}{
		{name: "next minor", cur: cluster(t, "v1.36.3", "v1.36.3", "v1.36.3"), to: "v1.37.2", want: "v1.37.2"},
		{name: "patch", cur: cluster(t, "v1.37.0", "v1.37.0"), to: "v1.37.2", want: "v1.37.2"},
		{name: "resume: some nodes done", cur: cluster(t, "v1.37.2", "v1.37.2", "v1.36.3"), to: "v1.37.2", want: "v1.37.2"},
		{name: "same version", cur: cluster(t, "v1.37.2", "v1.37.2"), to: "v1.37.2", want: "v1.37.2"},
		{name: "downgrade", cur: cluster(t, "v1.37.2", "v1.37.2"), to: "v1.36.3", wantErr: "older than the apiserver, which runs v1.37.2: downgrades are not supported"},
		{name: "downgrade of one node", cur: cluster(t, "v1.37.0", "v1.37.0", "v1.37.2"), to: "v1.37.1", wantErr: "older than node b's kubelet, which runs v1.37.2"},
		{name: "skip a minor", cur: cluster(t, "v1.36.3", "v1.36.3"), to: "v1.38.0", wantErr: "2 minor versions past the apiserver (v1.36.3): Kubernetes upgrades one minor at a time; fix: upgrade to a v1.37 release first"},
		{name: "oldest kubelet decides", cur: cluster(t, "v1.37.2", "v1.36.3"), to: "v1.38.0", wantErr: "past node a's kubelet (v1.36.3)"},
		{name: "major", cur: cluster(t, "v1.37.2"), to: "v2.0.0", wantErr: "another major version"},
		{name: "via without step", cur: cluster(t, "v1.36.3"), to: "v1.38.0", via: []string{"v1.37.2"}, wantErr: "only --step walks"},
		{name: "step", cur: cluster(t, "v1.36.3", "v1.36.3"), to: "v1.39.1", via: []string{"v1.38.0", "v1.37.2"}, step: true, want: "v1.37.2,v1.38.0,v1.39.1"},
		{name: "step resumes after a pass", cur: cluster(t, "v1.37.2", "v1.37.2"), to: "v1.38.0", via: []string{"v1.37.2"}, step: true, want: "v1.38.0"},
		{name: "step resumes mid pass", cur: cluster(t, "v1.37.2", "v1.36.3"), to: "v1.38.0", via: []string{"v1.37.2"}, step: true, want: "v1.37.2,v1.38.0"},
		{name: "step with a gap", cur: cluster(t, "v1.36.3"), to: "v1.39.0", via: []string{"v1.37.2"}, step: true, wantErr: "between v1.37.2 and v1.39.0: Kubernetes upgrades one minor at a time; fix: add --via DIR with artifacts of a v1.38 release"},
		{name: "step without via", cur: cluster(t, "v1.36.3"), to: "v1.38.0", step: true, wantErr: "add --via DIR with artifacts of a v1.37 release"},
		{name: "via not below target", cur: cluster(t, "v1.36.3"), to: "v1.37.2", via: []string{"v1.37.2"}, step: true, wantErr: "not older than --to"},
		{name: "via would downgrade", cur: cluster(t, "v1.37.1", "v1.36.3"), to: "v1.38.0", via: []string{"v1.37.0"}, step: true, wantErr: "that pass would downgrade it"},
		{name: "two via in a minor", cur: cluster(t, "v1.36.3"), to: "v1.38.0", via: []string{"v1.37.0", "v1.37.2"}, step: true, wantErr: "same minor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var via []Version
			for _, v := range tc.via {
				via = append(via, mustV(t, v))
			}
			got, err := UpgradePasses(tc.cur, mustV(t, tc.to), via, tc.step)
			if tc.wantErr != "" {
				var se *SkewError
				if err == nil || !errors.As(err, &se) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want a SkewError containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, v := range got {
				s = append(s, v.String())
			}
			if strings.Join(s, ",") != tc.want {
				t.Fatalf("passes = %v, want %s", s, tc.want)
			}
		})
	}
}

func TestReadClusterVersions(t *testing.T) {
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "m1"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.36.3"}}},
	)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.37.2"}
	got, err := ReadClusterVersions(context.Background(), cs)
	if err != nil {
		t.Fatal(err)
	}
	if o, who := got.Oldest(); o.String() != "v1.36.3" || who != "node w1's kubelet" {
		t.Errorf("oldest = %s (%s)", o, who)
	}
	if n, _ := got.Newest(); n.String() != "v1.37.2" {
		t.Errorf("newest = %s", n)
	}
	if got.AllAt(mustV(t, "v1.37.2")) {
		t.Error("AllAt with w1 behind")
	}
}
