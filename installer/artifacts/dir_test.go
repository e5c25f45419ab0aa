package artifacts

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestDirVerifyAll(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, root string)
		golden string // "" means VerifyAll must pass
	}{
		{"intact", func(*testing.T, string) {}, ""},
		{"missing file", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, "bin/kubelet")); err != nil {
				t.Fatal(err)
			}
		}, "dir-missing"},
		{"corrupted file same size", func(t *testing.T, root string) {
			b := append([]byte(nil), testFiles["etcd"]...)
			b[0] ^= 0xff
			if err := os.WriteFile(filepath.Join(root, "bin/etcd"), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "dir-corrupted"},
		{"missing and truncated", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, "images/pause.tar"))
			if err := os.WriteFile(filepath.Join(root, "bin/kube-apiserver"), []byte("trunc"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "dir-missing-and-truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := writeDir(t)
			tc.break_(t, root)
			d, err := OpenDir(root)
			if err != nil {
				t.Fatal(err)
			}
			err = d.VerifyAll(ctx)
			if tc.golden == "" {
				if err != nil {
					t.Fatalf("VerifyAll: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("VerifyAll passed on a broken directory")
			}
			if !IsIntegrityError(err) {
				t.Errorf("IsIntegrityError(%v) = false", err)
			}
			golden(t, tc.golden, scrub(err.Error(), root))
		})
	}
}

func TestDirOpenVerifiesWhileStreaming(t *testing.T) {
	ctx := context.Background()
	root := writeDir(t)
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := d.Open(ctx, "kubelet")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != string(testFiles["kubelet"]) {
		t.Fatalf("read intact kubelet: %q, %v", b, err)
	}

	// Same size, different bytes: only the checksum at EOF can tell.
	bad := append([]byte(nil), testFiles["kubelet"]...)
	bad[len(bad)-2] = 'X'
	if err := os.WriteFile(filepath.Join(root, "bin/kubelet"), bad, 0o755); err != nil {
		t.Fatal(err)
	}
	rc, err = d.Open(ctx, "kubelet")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Name != "kubelet" || ce.Got != sum(bad) || ce.Want != sum(testFiles["kubelet"]) {
		t.Fatalf("read corrupted kubelet: err = %v, want ChecksumError naming kubelet", err)
	}

	// Different size: refused before the first byte.
	if err := os.WriteFile(filepath.Join(root, "bin/kubelet"), []byte("short"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(ctx, "kubelet"); !errors.As(err, &ce) || ce.GotSize != 5 {
		t.Errorf("open short kubelet: err = %v, want ChecksumError with size 5", err)
	}
	os.Remove(filepath.Join(root, "bin/etcd"))
	var me *MissingError
	if _, err := d.Open(ctx, "etcd"); !errors.As(err, &me) || me.Name != "etcd" {
		t.Errorf("open missing etcd: err = %v, want MissingError", err)
	}
	if _, err := d.Open(ctx, "containerd"); err == nil {
		t.Error("opened an os-package entry")
	}
}

func TestOpenDirRejectsBadManifest(t *testing.T) {
	root := t.TempDir()
	if _, err := OpenDir(root); err == nil {
		t.Fatal("opened a directory without manifest")
	}
	if err := os.WriteFile(filepath.Join(root, ManifestFile), []byte("apiVersion: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := OpenDir(root)
	if err == nil {
		t.Fatal("opened a directory with an invalid manifest")
	}
	golden(t, "dir-bad-manifest", scrub(err.Error(), root)+"\n")
}
