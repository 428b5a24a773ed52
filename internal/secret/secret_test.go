package secret

import (
	"bytes"
	"errors"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestBox(t *testing.T) {
	old, _ := NewBox(key(1))
	box, err := NewBox(key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	sealed := box.Seal([]byte("access_token"), []byte("webtoken:o1"))
	if bytes.Contains(sealed, []byte("access_token")) {
		t.Fatal("plaintext visible in the sealed value")
	}
	if got, err := box.Open(sealed, []byte("webtoken:o1")); err != nil || string(got) != "access_token" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Sealed under the previous key: still opens (rotation).
	if got, err := box.Open(old.Seal([]byte("v"), nil), nil); err != nil || string(got) != "v" {
		t.Errorf("previous key: %q, %v", got, err)
	}
	// The old box cannot open what the new key sealed.
	if _, err := old.Open(sealed, []byte("webtoken:o1")); !errors.Is(err, ErrOpen) {
		t.Errorf("unknown key: %v", err)
	}
	for name, bad := range map[string][]byte{
		"WrongAAD":  nil,
		"Tampered":  append(append([]byte{}, sealed[:len(sealed)-1]...), sealed[len(sealed)-1]^1),
		"Truncated": sealed[:10],
		"Empty":     {},
	} {
		aad := []byte("webtoken:o1")
		in := bad
		if name == "WrongAAD" {
			aad, in = []byte("webtoken:o2"), sealed
		}
		if _, err := box.Open(in, aad); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
	if a, b := box.Seal([]byte("x"), nil), box.Seal([]byte("x"), nil); bytes.Equal(a, b) {
		t.Error("two seals of one value are equal: the nonce is not random")
	}
}

func TestNewBox_KeySize(t *testing.T) {
	for _, k := range [][]byte{nil, key(1)[:16], append(key(1), 0)} {
		if _, err := NewBox(k); err == nil {
			t.Errorf("NewBox accepted a %d-byte key", len(k))
		}
	}
	if _, err := NewBox(key(1), key(2)[:31]); err == nil {
		t.Error("NewBox accepted a short previous key")
	}
}
