package artifactstest

import (
	"context"
	"io"
	"testing"
)

// Opener is the part of artifacts.Source that ReadFile needs; declared here
// so the artifacts package's own tests can use this package without a cycle.
type Opener interface {
	Open(ctx context.Context, name string) (io.ReadCloser, error)
}

// ReadFile reads the artifact called name from src, failing the test on
// any error.
func ReadFile(t *testing.T, src Opener, name string) []byte {
	t.Helper()
	rc, err := src.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}
