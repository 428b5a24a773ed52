// Package secret seals values kept at rest (WeChat tokens, private keys) with
// AES-256-GCM under WXAUTH_SECRET_KEY, and opens values sealed under the
// current or a previous key, so the key can be rotated without losing data.
// It imports the standard library only.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the length of a sealing key in bytes.
const KeySize = 32

// ErrOpen is returned by [Box.Open] when no key authenticates the value
// (tampered, truncated, or sealed under an unknown key).
var ErrOpen = errors.New("secret: cannot open sealed value")

// Box seals with its current key and opens with the current or any previous
// key. It is safe for concurrent use.
type Box struct {
	aeads  []cipher.AEAD // [0] is current
	macKey []byte        // derived from the current key; see Box.Sum
}

// NewBox returns a Box sealing under key and also opening values sealed under
// previous keys. Every key must be [KeySize] bytes, else an error naming the
// offending key's position is returned.
func NewBox(key []byte, previous ...[]byte) (*Box, error) {
	b := &Box{}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("secret: key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secret: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret: key %d: %w", i, err)
		}
		b.aeads = append(b.aeads, aead)
		if i == 0 {
			b.macKey = deriveMACKey(k)
		}
	}
	return b, nil
}

// Seal encrypts plaintext under the current key, bound to aad (a purpose
// label such as "webtoken:u_123", so a value cannot be moved to another
// place). The result is nonce (12 bytes) || ciphertext || tag (16 bytes).
func (b *Box) Seal(plaintext, aad []byte) []byte {
	a := b.aeads[0]
	out := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic("secret: crypto/rand failed: " + err.Error()) // crypto/rand.Read never fails on Linux
	}
	return a.Seal(out, out, plaintext, aad)
}

// Open decrypts a value produced by Seal under the current or a previous key
// with the same aad. Errors: [ErrOpen].
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	for _, a := range b.aeads {
		n := a.NonceSize()
		if len(sealed) < n+a.Overhead() {
			return nil, ErrOpen
		}
		if pt, err := a.Open(nil, sealed[:n], sealed[n:], aad); err == nil {
			return pt, nil
		}
	}
	return nil, ErrOpen
}
