package kube

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Version is a Kubernetes release, vMAJOR.MINOR.PATCH with an optional
// pre-release (-rc.1) and build metadata (+abc, ignored in comparisons), as
// kubelets report it in their Node status and the apiserver at /version.
type Version struct {
	Major, Minor, Patch int
	Pre                 string
	Raw                 string
}

var versionRe = regexp.MustCompile(`^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)

// ParseVersion reads a release like v1.37.2.
func ParseVersion(s string) (Version, error) {
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("%q is not a Kubernetes version: want vMAJOR.MINOR.PATCH, e.g. v1.37.2", s)
	}
	v := Version{Pre: m[4], Raw: s}
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, nil
}

func (v Version) String() string { return v.Raw }

// MinorString is "v1.37".
func (v Version) MinorString() string { return fmt.Sprintf("v%d.%d", v.Major, v.Minor) }

// Compare orders releases; a pre-release comes before its release.
func (v Version) Compare(o Version) int {
	for _, d := range []int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch} {
		if d != 0 {
			return sign(d)
		}
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	}
	return strings.Compare(v.Pre, o.Pre)
}

func sign(d int) int {
	if d < 0 {
		return -1
	}
	return 1
}

// ClusterVersions are the versions the cluster reports: the apiserver that
// answered /version and every node's kubelet.
type ClusterVersions struct {
	APIServer Version
	Kubelets  map[string]Version // node name -> kubelet version
}

// ReadClusterVersions asks the API for its own version and every node's
// kubelet version.
func ReadClusterVersions(ctx context.Context, cs kubernetes.Interface) (ClusterVersions, error) {
	info, err := cs.Discovery().ServerVersion()
	if err != nil {
		return ClusterVersions{}, fmt.Errorf("read the apiserver version: %w", err)
	}
	api, err := ParseVersion(info.GitVersion)
	if err != nil {
		return ClusterVersions{}, fmt.Errorf("apiserver /version: %w", err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return ClusterVersions{}, fmt.Errorf("list nodes: %w", err)
	}
	out := ClusterVersions{APIServer: api, Kubelets: map[string]Version{}}
	for _, n := range nodes.Items {
		v, err := ParseVersion(n.Status.NodeInfo.KubeletVersion)
		if err != nil {
			return ClusterVersions{}, fmt.Errorf("node %s kubelet: %w", n.Name, err)
		}
		out.Kubelets[n.Name] = v
	}
	return out, nil
}

// Oldest and Newest are over the apiserver and every kubelet, with a name
// for messages ("apiserver" or "node NAME").
func (c ClusterVersions) Oldest() (Version, string) { return c.extreme(-1) }
func (c ClusterVersions) Newest() (Version, string) { return c.extreme(1) }

func (c ClusterVersions) extreme(dir int) (Version, string) {
	best, who := c.APIServer, "the apiserver"
	names := make([]string, 0, len(c.Kubelets))
	for n := range c.Kubelets {
		names = append(names, n)
	}
	sort.Strings(names) // a stable name when several tie
	for _, n := range names {
		if v := c.Kubelets[n]; v.Compare(best) == dir {
			best, who = v, "node "+n+"'s kubelet"
		}
	}
	return best, who
}

// AllAt reports whether every component already runs v.
func (c ClusterVersions) AllAt(v Version) bool {
	o, _ := c.Oldest()
	n, _ := c.Newest()
	return o.Compare(v) == 0 && n.Compare(v) == 0
}

// SkewError is an upgrade the version-skew rules refuse; Fix says what to do.
type SkewError struct {
	Msg, Fix string
}

func (e *SkewError) Error() string { return e.Msg + "; fix: " + e.Fix }

// UpgradePasses returns the releases to upgrade to, in order, to go from
// the cluster's versions to target: one pass per minor, because Kubernetes
// supports a control plane only one minor newer than its oldest component.
// via are the intermediate releases there are artifacts for; they are used
// only with step (the operator's explicit --step), and those the cluster is
// already at or beyond are dropped, so a re-run after a finished pass
// resumes with the next one. A downgrade is refused, and so is any pass
// that would take a component backwards.
func UpgradePasses(cur ClusterVersions, target Version, via []Version, step bool) ([]Version, error) {
	oldest, oldWho := cur.Oldest()
	newest, newWho := cur.Newest()
	if target.Compare(newest) < 0 {
		return nil, &SkewError{
			Msg: fmt.Sprintf("%s is older than %s, which runs %s: downgrades are not supported", target, newWho, newest),
			Fix: "restore an etcd snapshot taken before the upgrade onto a cluster installed at the old version, or pass --to " + newest.String() + " or newer",
		}
	}
	if target.Major != oldest.Major {
		return nil, &SkewError{
			Msg: fmt.Sprintf("%s is another major version than %s (%s)", target, oldWho, oldest),
			Fix: "upgrade within major version " + strconv.Itoa(oldest.Major),
		}
	}
	if !step {
		if len(via) > 0 {
			return nil, &SkewError{Msg: "--via gives intermediate releases, which only --step walks", Fix: "add --step, or drop --via"}
		}
		if target.Minor > oldest.Minor+1 {
			next := fmt.Sprintf("v%d.%d", oldest.Major, oldest.Minor+1)
			return nil, &SkewError{
				Msg: fmt.Sprintf("%s is %d minor versions past %s (%s): Kubernetes upgrades one minor at a time", target, target.Minor-oldest.Minor, oldWho, oldest),
				Fix: fmt.Sprintf("upgrade to a %s release first (--to v%d.%d.PATCH with artifacts of that release), or pass --step with --via DIR for each minor in between", next, oldest.Major, oldest.Minor+1),
			}
		}
		return []Version{target}, nil
	}
	sorted := append([]Version(nil), via...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Compare(sorted[j]) < 0 })
	var passes []Version
	for _, v := range sorted {
		switch {
		case v.Compare(target) >= 0:
			return nil, &SkewError{Msg: fmt.Sprintf("--via release %s is not older than --to %s", v, target), Fix: "give --via only releases between the cluster's and --to"}
		case v.Major != target.Major:
			return nil, &SkewError{Msg: fmt.Sprintf("--via release %s is another major version than %s", v, target), Fix: "give --via only releases between the cluster's and --to"}
		case v.Compare(oldest) <= 0:
			continue // already there: a finished pass of an earlier run
		case v.Compare(newest) < 0:
			return nil, &SkewError{
				Msg: fmt.Sprintf("--via release %s is older than %s, which runs %s: that pass would downgrade it", v, newWho, newest),
				Fix: "drop that --via, or give one at " + newest.String() + " or newer",
			}
		}
		if len(passes) > 0 && passes[len(passes)-1].Minor == v.Minor {
			return nil, &SkewError{Msg: fmt.Sprintf("--via releases %s and %s are the same minor", passes[len(passes)-1], v), Fix: "give one release per minor"}
		}
		passes = append(passes, v)
	}
	passes = append(passes, target)
	from := oldest
	for _, p := range passes {
		if p.Minor > from.Minor+1 {
			return nil, &SkewError{
				Msg: fmt.Sprintf("no release to step through between %s and %s: Kubernetes upgrades one minor at a time", from, p),
				Fix: fmt.Sprintf("add --via DIR with artifacts of a v%d.%d release", from.Major, from.Minor+1),
			}
		}
		from = p
	}
	return passes, nil
}
