package callback

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"sort"
)

// Sign returns WeChat's callback signature: the lowercase hex SHA-1 of token,
// timestamp, nonce and any extra strings, sorted bytewise and concatenated
// without a separator. With no extra it is the `signature` query parameter of
// every callback request (and of GET URL verification); with the Encrypt
// value as extra it is `msg_signature`, and the MsgSignature of an encrypted
// reply. The result is 40 bytes.
//
// https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html
func Sign(token, timestamp, nonce string, extra ...string) string {
	var buf [40]byte
	return string(appendSign(buf[:0], token, timestamp, nonce, extra...))
}

// appendSign appends the hex signature of the strings to dst.
func appendSign(dst []byte, token, timestamp, nonce string, extra ...string) []byte {
	var arr [4]string
	parts := arr[:0]
	if len(extra) > 1 {
		parts = make([]string, 0, 3+len(extra))
	}
	parts = append(parts, token, timestamp, nonce)
	parts = append(parts, extra...)
	sortStrings(parts)
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var stack [2048]byte
	joined := stack[:0]
	if n > len(stack) {
		joined = make([]byte, 0, n)
	}
	for _, p := range parts {
		joined = append(joined, p...)
	}
	sum := sha1.Sum(joined)
	var out [2 * sha1.Size]byte
	hex.Encode(out[:], sum[:])
	return append(dst, out[:]...)
}

// sortStrings sorts a few strings in place without allocating.
func sortStrings(s []string) {
	if len(s) > 8 {
		sort.Strings(s)
		return
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// checkSign reports, in constant time over the signature bytes, whether got
// is the signature of the strings.
func checkSign(got, token, timestamp, nonce string, extra ...string) bool {
	var buf [40]byte
	want := appendSign(buf[:0], token, timestamp, nonce, extra...)
	return len(got) == len(want) && subtle.ConstantTimeCompare([]byte(got), want) == 1
}
