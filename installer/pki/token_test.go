package pki

import (
	"bytes"
	"testing"
)

func TestNewBootstrapToken(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		id, secret := NewBootstrapToken()
		tok := id + "." + secret
		if !IsBootstrapToken(tok) {
			t.Fatalf("token %q does not match [a-z0-9]{6}.[a-z0-9]{16}", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
	}
	for _, bad := range []string{"abcdef.0123456789abcdef0", "ABCDEF.0123456789abcdef", "abcdef0123456789abcdef", "abcde.0123456789abcdefg"} {
		if IsBootstrapToken(bad) {
			t.Errorf("IsBootstrapToken(%q) = true", bad)
		}
	}
}

// TestRandomStringRejectsBiasedBytes feeds known bytes: 252..255 would
// favour the first four characters and must be skipped.
func TestRandomStringRejectsBiasedBytes(t *testing.T) {
	in := []byte{255, 0, 252, 35, 36, 71, 251, 253}
	got, err := randomString(bytes.NewReader(in), 4)
	if err != nil {
		t.Fatal(err)
	}
	// 0->a, 35->9, 36->a, 71->9 (251 is never reached: 4 characters done).
	if got != "a9a9" {
		t.Errorf("got %q, want a9a9", got)
	}
	if _, _, err := newBootstrapToken(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Error("short random source did not fail")
	}
}
