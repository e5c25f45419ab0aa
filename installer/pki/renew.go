package pki

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Renew re-issues leaf certificates and kubeconfigs with new keys, whatever
// their state, and returns which components must restart on which hosts.
// names are kubeadm's (see RenewableNames); none, or "all", renews every
// leaf. CAs and the service-account key are never renewed here.
//
// New keys, like kubeadm certs renew: renewing is the moment to limit the
// life of a key that may have leaked, and nothing pins leaf keys.
func (s *Store) Renew(spec Spec, names ...string) (Report, []Restart, error) {
	var rep Report
	spec = spec.withDefaults()
	if err := spec.validate(); err != nil {
		return rep, nil, err
	}
	all := len(names) == 0 || (len(names) == 1 && names[0] == "all")
	want := map[string]bool{}
	if !all {
		var unknown []string
		for _, n := range names {
			if !slices.Contains(RenewableNames(), n) {
				unknown = append(unknown, n)
			}
			want[n] = true
		}
		if len(unknown) > 0 {
			return rep, nil, fmt.Errorf("renew: unknown certificate %s (want all or one of %s)",
				strings.Join(unknown, ", "), strings.Join(RenewableNames(), ", "))
		}
	}
	leaves, err := spec.leaves()
	if err != nil {
		return rep, nil, err
	}
	cas := map[string]*caPair{}
	for _, d := range caDefs {
		ca, err := s.loadCA(d.rel)
		if errors.Is(err, fs.ErrNotExist) {
			return rep, nil, fmt.Errorf("renew: CA %s not found in %s: run install first", d.rel, s.dir)
		}
		if err != nil {
			return rep, nil, fmt.Errorf("renew: %w", err)
		}
		cas[d.rel] = ca
	}
	now := s.now()
	for _, d := range leaves {
		if !all && !want[d.name] {
			continue
		}
		item, err := s.ensureLeaf(d, cas[d.ca], spec, now, true)
		if err != nil {
			return rep, rep.Restarts(spec), fmt.Errorf("renew: %w", err)
		}
		rep.add(item)
	}
	return rep, rep.Restarts(spec), nil
}
