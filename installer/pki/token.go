package pki

import (
	"crypto/rand"
	"fmt"
	"io"
	"regexp"
)

// Bootstrap tokens are kubeadm's: a public 6-character id and a 16-character
// secret, lowercase letters and digits, joined by a dot. The apiserver only
// accepts that exact format.
const bootstrapTokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

var bootstrapTokenRe = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// NewBootstrapToken returns a fresh token id and secret from crypto/rand.
// The token is id + "." + secret.
func NewBootstrapToken() (id, secret string) {
	id, secret, err := newBootstrapToken(rand.Reader)
	if err != nil {
		// crypto/rand.Reader does not fail on supported platforms (Go ≥ 1.24
		// crashes the program instead), so this is unreachable in practice.
		panic(fmt.Sprintf("bootstrap token: %v", err))
	}
	return id, secret
}

// IsBootstrapToken reports whether token has the id.secret format.
func IsBootstrapToken(token string) bool { return bootstrapTokenRe.MatchString(token) }

func newBootstrapToken(r io.Reader) (string, string, error) {
	s, err := randomString(r, 22)
	if err != nil {
		return "", "", err
	}
	return s[:6], s[6:], nil
}

// randomString draws uniformly from bootstrapTokenChars: bytes at or above
// the largest multiple of 36 are rejected so no character is favoured.
func randomString(r io.Reader, n int) (string, error) {
	const limit = 256 - 256%len(bootstrapTokenChars)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, bootstrapTokenChars[int(b)%len(bootstrapTokenChars)])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}
