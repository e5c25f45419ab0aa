package stepkit

import (
	"reflect"
	"testing"
)

func TestParseInstalled(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) map[string]bool
		out   string
		want  map[string]bool
	}{
		{"dpkg installed and removed", parseDpkgQuery,
			"socat ii \nipset rc \nconntrack:amd64 ii \n", map[string]bool{"socat": true, "conntrack": true}},
		{"dpkg half-installed", parseDpkgQuery, "socat iF \n", map[string]bool{}},
		{"rpm", parseRPMQuery,
			"socat\npackage ipset is not installed\nconntrack-tools\n", map[string]bool{"socat": true, "conntrack-tools": true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.parse(tc.out); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseUnitState(t *testing.T) {
	tests := []struct {
		out             string
		enabled, active bool
		err             bool
	}{
		{"enabled\nactive\n", true, true, false},
		{"static\nactivating\n", true, false, false},
		{"disabled\ninactive\n", false, false, false},
		{"masked\nfailed\n", false, false, false},
		{"unknown\nunknown\n", false, false, false},
		{"garbage\n", false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.out, func(t *testing.T) {
			st, err := parseUnitState(tc.out)
			if (err != nil) != tc.err || st.Enabled != tc.enabled || st.Active != tc.active {
				t.Fatalf("got %+v, %v", st, err)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	out := "644 root:root e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nmissing\nnotfile\n"
	st, err := parseStat(out, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []FileState{
		{Exists: true, Mode: 0o644, Owner: "root:root", SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{},
		{Exists: true, NotRegular: true},
	}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("got %+v", st)
	}
	for _, bad := range []string{"missing\n", "644 root:root\nmissing\nmissing\n", "error\nmissing\nmissing\n", "9z9 root:root x\nmissing\nmissing\n"} {
		if _, err := parseStat(bad, 3); err == nil {
			t.Errorf("parseStat(%q) accepted bad output", bad)
		}
	}
}
