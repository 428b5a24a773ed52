package clients

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

func sha256Verifier(want []byte) func(string) bool {
	return func(secret string) bool {
		got := sha256.Sum256([]byte(secret))
		return subtle.ConstantTimeCompare(got[:], want) == 1
	}
}

// verifierFor parses a client_secret_hash. A bcrypt hash costs tens of
// milliseconds per check; the verifier remembers the SHA-256 of the last
// secret that passed, so a client's repeated token requests cost one hash.
func verifierFor(h string) (func(string) bool, error) {
	if hexSum, ok := strings.CutPrefix(h, "sha256:"); ok {
		want, err := hex.DecodeString(hexSum)
		if err != nil || len(want) != sha256.Size {
			return nil, errors.New("sha256: must be followed by 64 hex digits")
		}
		return sha256Verifier(want), nil
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return nil, errors.New(`must be a bcrypt hash ($2a$/$2b$/$2y$) or "sha256:<64 hex digits>"`)
	}
	var mu sync.Mutex
	var passed []byte
	return func(secret string) bool {
		sum := sha256.Sum256([]byte(secret))
		mu.Lock()
		known := passed
		mu.Unlock()
		if known != nil && subtle.ConstantTimeCompare(sum[:], known) == 1 {
			return true
		}
		if bcrypt.CompareHashAndPassword([]byte(h), []byte(secret)) != nil {
			return false
		}
		mu.Lock()
		passed = sum[:]
		mu.Unlock()
		return true
	}, nil
}

// HashSecret returns the client_secret_hash of secret in the "sha256:<hex>"
// form. A client secret is a random string of at least 16 bytes, so a fast
// hash is as safe as a slow one and keeps the token endpoint fast.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}
