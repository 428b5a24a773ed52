package store

import "crypto/rand"

// base62 is the alphabet of generated identifiers.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// UserIDLen is the length in bytes of a [User.ID]: "u_" and 22 base62
// characters (about 131 bits from crypto/rand).
const UserIDLen = 2 + 22

// NewUserID returns a fresh [User.ID]: "u_" followed by 22 uniformly random
// base62 characters read from crypto/rand. Implementations call it when
// UpsertUser creates a user.
func NewUserID() string {
	return "u_" + RandomBase62(UserIDLen-2)
}

// RandomBase62 returns n uniformly random base62 characters ([0-9A-Za-z])
// read from crypto/rand (rejection sampling, so no character is favoured).
// crypto/rand.Read does not fail on supported platforms (Go 1.24+). n <= 0
// gives "".
func RandomBase62(n int) string {
	if n <= 0 {
		return ""
	}
	out := make([]byte, 0, n)
	var buf [64]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:])
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: keep the distribution uniform
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}
