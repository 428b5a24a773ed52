package secret

import (
	"crypto/hmac"
	"crypto/sha256"
)

// macLabel separates the MAC key from the sealing key it is derived from.
const macLabel = "wxauth secret.Box MAC key"

// deriveMACKey returns HMAC-SHA-256(key, macLabel): a key for [Box.Sum]
// that is never used for sealing.
func deriveMACKey(key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(macLabel))
	return h.Sum(nil)
}

// Sum returns the HMAC-SHA-256 of msg under a key derived from the current
// sealing key, bound to label (a purpose such as "refresh-successor"): the
// same inputs give the same 32 bytes in every instance sharing the key, and
// nobody without the key can compute them. A rotated key changes every sum.
func (b *Box) Sum(label string, msg []byte) [sha256.Size]byte {
	h := hmac.New(sha256.New, b.macKey)
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(msg)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
