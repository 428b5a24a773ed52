package wxemu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// This file is WeChat's side of the callback cryptography, written from
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
// and the official WXBizMsgCrypt samples, and independent of the service's
// own code so that each checks the other.

// blockSize is the PKCS#7 block WeChat pads to: 32 bytes, not AES's 16.
const blockSize = 32

// Errors of the callback cryptography. They name the failing step only; no
// key, token or plaintext ever appears in them.
var (
	// ErrAESKey reports an EncodingAESKey that is not 43 characters of
	// [a-zA-Z0-9] decoding to 32 bytes (WXBizMsgCrypt -40004).
	ErrAESKey = errors.New("wxemu: invalid EncodingAESKey")
	// ErrDecrypt reports a ciphertext that is not valid base64, not a whole
	// number of AES blocks, or whose padding or length prefix is wrong
	// (WXBizMsgCrypt -40007/-40008/-40010).
	ErrDecrypt = errors.New("wxemu: cannot decrypt")
	// ErrAppID reports a decrypted message whose trailing appid is not the
	// expected one (WXBizMsgCrypt -40005).
	ErrAppID = errors.New("wxemu: appid mismatch")
)

// Signature returns WeChat's callback signature: the SHA-1, in lowercase hex,
// of the parts sorted as strings and concatenated. With (token, timestamp,
// nonce) it is the `signature` query parameter; adding the Encrypt value it is
// `msg_signature` and the reply's MsgSignature.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
func Signature(parts ...string) string {
	s := append([]string(nil), parts...)
	sort.Strings(s)
	sum := sha1.Sum([]byte(strings.Join(s, "")))
	return hex.EncodeToString(sum[:])
}

// equalSignature compares two hex signatures in constant time.
func equalSignature(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// aesKey decodes a 43-character EncodingAESKey into its 32-byte AES key.
// Errors: [ErrAESKey].
func aesKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, ErrAESKey
	}
	for i := 0; i < len(encodingAESKey); i++ {
		c := encodingAESKey[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return nil, ErrAESKey
		}
	}
	// The 43 characters carry 256 bits plus 2 spare bits that WeChat ignores,
	// so decode leniently (std padding, no strict trailing bits).
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, ErrAESKey
	}
	return key, nil
}

// Encrypt seals msg the way WeChat does for the callback's <Encrypt> field:
// AES-256-CBC with IV = key[0:16] over random(16) || uint32_be(len(msg)) ||
// msg || appid, PKCS#7-padded to a multiple of 32 bytes, then standard
// base64. random must be 16 bytes.
//
// Errors: [ErrAESKey] for a bad EncodingAESKey; an error when random is not
// 16 bytes.
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
func Encrypt(encodingAESKey, appID string, random, msg []byte) (string, error) {
	key, err := aesKey(encodingAESKey)
	if err != nil {
		return "", err
	}
	if len(random) != 16 {
		return "", fmt.Errorf("wxemu: encrypt: random is %d bytes, want 16", len(random))
	}
	n := 16 + 4 + len(msg) + len(appID)
	pad := blockSize - n%blockSize // 1..32
	buf := make([]byte, 0, n+pad)
	buf = append(buf, random...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, msg...)
	buf = append(buf, appID...)
	buf = append(buf, bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", fmt.Errorf("wxemu: encrypt: %w", err)
	}
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// Decrypt opens an <Encrypt> value sealed by [Encrypt] and returns the
// 16-byte random prefix and the message. When appID is not empty the
// trailing appid must equal it.
//
// Errors: [ErrAESKey], [ErrDecrypt], [ErrAppID].
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
func Decrypt(encodingAESKey, appID, encrypted string) (random, msg []byte, err error) {
	key, err := aesKey(encodingAESKey)
	if err != nil {
		return nil, nil, err
	}
	buf, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil || len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return nil, nil, ErrDecrypt
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, fmt.Errorf("wxemu: decrypt: %w", err)
	}
	cipher.NewCBCDecrypter(block, key[:16]).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad < 1 || pad > blockSize || pad > len(buf) {
		return nil, nil, ErrDecrypt
	}
	for _, b := range buf[len(buf)-pad:] {
		if int(b) != pad {
			return nil, nil, ErrDecrypt
		}
	}
	buf = buf[:len(buf)-pad]
	if len(buf) < 20 {
		return nil, nil, ErrDecrypt
	}
	n := binary.BigEndian.Uint32(buf[16:20])
	if uint64(n) > uint64(len(buf)-20) {
		return nil, nil, ErrDecrypt
	}
	random, msg = buf[:16], buf[20:20+n]
	if appID != "" && subtle.ConstantTimeCompare(buf[20+n:], []byte(appID)) != 1 {
		return nil, nil, ErrAppID
	}
	return random, msg, nil
}
