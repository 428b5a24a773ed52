package callback

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
)

const (
	// aesKeyLen is the length of an EncodingAESKey in characters.
	aesKeyLen = 43
	// randomLen is the length of the random prefix of a plaintext, in bytes.
	randomLen = 16
	// padBlock is the PKCS#7 block size WeChat pads to, in bytes (not AES's 16).
	padBlock = 32
)

// Crypter encrypts and decrypts callback bodies with one EncodingAESKey, as
// WeChat's safe and compatible modes do: key = base64(EncodingAESKey + "="),
// AES-256-CBC with IV = key[:16], plaintext = random (16 bytes) ||
// uint32 big-endian length || msg || appid, PKCS#7-padded to a multiple of 32
// bytes, then standard base64. The cipher is set up once in [NewCrypter]; a
// Crypter is safe for concurrent use.
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
type Crypter struct {
	block cipher.Block
	iv    [aes.BlockSize]byte
	appID string
}

// NewCrypter returns a Crypter for the EncodingAESKey aesKey (43 characters
// [a-zA-Z0-9]) of the account appID. It returns an error wrapping [ErrAESKey]
// when the key is malformed; the error never quotes the key.
func NewCrypter(aesKey, appID string) (*Crypter, error) {
	if len(aesKey) != aesKeyLen {
		return nil, fmt.Errorf("callback: EncodingAESKey is %d characters, want %d: %w", len(aesKey), aesKeyLen, ErrAESKey)
	}
	for i := 0; i < len(aesKey); i++ {
		c := aesKey[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return nil, fmt.Errorf("callback: EncodingAESKey has a character outside [a-zA-Z0-9] at %d: %w", i, ErrAESKey)
		}
	}
	// The 43rd character carries 2 bits of padding; WeChat's keys and its
	// samples accept any value there, so decode leniently.
	key, err := base64.StdEncoding.DecodeString(aesKey + "=")
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("callback: EncodingAESKey does not decode to 32 bytes: %w", ErrAESKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("callback: EncodingAESKey: %w", ErrAESKey)
	}
	c := &Crypter{block: block, appID: appID}
	copy(c.iv[:], key[:aes.BlockSize])
	return c, nil
}

// AppID returns the appid this Crypter appends and expects.
func (c *Crypter) AppID() string { return c.appID }

// Encrypt returns the base64 ciphertext of msg with the 16-byte random
// prefix random (WeChat's samples use 16 random letters or bytes). It returns
// an error when random is not 16 bytes or msg is longer than 2^31 bytes.
func (c *Crypter) Encrypt(random []byte, msg []byte) (string, error) {
	out, _, err := c.appendEncrypt(nil, nil, random, msg)
	return string(out), err
}

// appendEncrypt appends the base64 ciphertext to dst, building the
// plaintext in scratch (grown as needed and returned for reuse).
func (c *Crypter) appendEncrypt(dst, scratch, random, msg []byte) (out, scratchOut []byte, err error) {
	if len(random) != randomLen {
		return dst, scratch, fmt.Errorf("callback: encrypt: random prefix is %d bytes, want %d", len(random), randomLen)
	}
	if len(msg) > 1<<31 {
		return dst, scratch, fmt.Errorf("callback: encrypt: message of %d bytes is too long", len(msg))
	}
	n := randomLen + 4 + len(msg) + len(c.appID)
	pad := padBlock - n%padBlock
	plain := scratch[:0]
	plain = append(plain, random...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, c.appID...)
	for i := 0; i < pad; i++ {
		plain = append(plain, byte(pad))
	}
	cipher.NewCBCEncrypter(c.block, c.iv[:]).CryptBlocks(plain, plain)
	return base64.StdEncoding.AppendEncode(dst, plain), plain, nil
}

// Decrypt returns the message inside the base64 ciphertext b64 and the appid
// that trailed it. It checks the appid against the Crypter's own in constant
// time. Errors (possibly wrapped): [ErrBase64] for bad base64, [ErrDecrypt]
// for a ciphertext that is not whole AES blocks or has bad PKCS#7 padding
// (1..32 bytes), [ErrBuffer] for an inconsistent length field, [ErrAppID]
// when the trailing appid is not the Crypter's; msg and appID are then nil
// and "".
func (c *Crypter) Decrypt(b64 string) (msg []byte, appID string, err error) {
	raw, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(b64))), []byte(b64))
	if err != nil {
		return nil, "", ErrBase64
	}
	msg, id, err := c.open(raw)
	if err != nil {
		return nil, "", err
	}
	return msg, string(id), nil
}

// open decrypts raw in place and returns the message and appid inside it,
// both aliasing raw. It checks the appid.
func (c *Crypter) open(raw []byte) (msg, appID []byte, err error) {
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, nil, ErrDecrypt
	}
	cipher.NewCBCDecrypter(c.block, c.iv[:]).CryptBlocks(raw, raw)
	pad := int(raw[len(raw)-1])
	if pad < 1 || pad > padBlock || pad > len(raw) {
		return nil, nil, ErrDecrypt
	}
	bad := 0
	for _, b := range raw[len(raw)-pad:] {
		bad |= int(b) ^ pad
	}
	if bad != 0 {
		return nil, nil, ErrDecrypt
	}
	raw = raw[:len(raw)-pad]
	if len(raw) < randomLen+4 {
		return nil, nil, ErrBuffer
	}
	n := binary.BigEndian.Uint32(raw[randomLen:])
	rest := raw[randomLen+4:]
	if uint64(n) > uint64(len(rest)) {
		return nil, nil, ErrBuffer
	}
	msg, appID = rest[:n], rest[n:]
	if subtle.ConstantTimeCompare(appID, []byte(c.appID)) != 1 {
		return nil, nil, ErrAppID
	}
	return msg, appID, nil
}
