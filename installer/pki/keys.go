package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types as kubeadm writes them (SEC1 for EC, PKCS#1 for RSA), so
// files look familiar and every tool in the ecosystem reads them.
const (
	pemCertificate   = "CERTIFICATE"
	pemECPrivateKey  = "EC PRIVATE KEY"
	pemRSAPrivateKey = "RSA PRIVATE KEY"
	pemPrivateKey    = "PRIVATE KEY"
	pemPublicKey     = "PUBLIC KEY"
)

func generateKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("unknown key algorithm %q", alg)
	}
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: pemECPrivateKey, Bytes: der}), nil
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: pemRSAPrivateKey, Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	default:
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
}

// parseKey reads the first private key block; PKCS#8 is accepted too so an
// operator may bring a CA made with openssl.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no private key PEM block")
		}
		switch b.Type {
		case pemECPrivateKey:
			return x509.ParseECPrivateKey(b.Bytes)
		case pemRSAPrivateKey:
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case pemPrivateKey:
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("unsupported private key type %T", k)
			}
			return s, nil
		}
	}
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// parseCert reads the first certificate of a PEM bundle.
func parseCert(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no CERTIFICATE PEM block")
		}
		if b.Type == pemCertificate {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func encodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

func parsePublicKey(data []byte) (crypto.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != pemPublicKey {
		return nil, errors.New("no PUBLIC KEY PEM block")
	}
	return x509.ParsePKIXPublicKey(b.Bytes)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// keyAlgorithmOf names a public key the way KeyAlgorithm does, so a mismatch
// with the spec can be reported in the same words.
func keyAlgorithmOf(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return string(ECDSAP256)
		case elliptic.P384():
			return "ecdsa-p384"
		case elliptic.P521():
			return "ecdsa-p521"
		}
		return "ecdsa"
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	default:
		return fmt.Sprintf("%T", pub)
	}
}
