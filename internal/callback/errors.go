package callback

import (
	"errors"
	"strconv"
)

// Error is a failure to verify, decrypt or parse a callback request, in the
// vocabulary of WeChat's WXBizMsgCrypt samples: Code is the sample's return
// code (-40001 signature, -40002 XML parse, -40004 bad EncodingAESKey, -40005
// appid mismatch, -40007 AES decrypt or padding, -40008 illegal buffer,
// -40010 base64 decode), or 0 for the checks the samples do not make
// (timestamp, ToUserName, mode). Reason is a short machine-friendly word for
// logs. An Error never carries message contents or secrets.
//
// Compare with errors.Is against the sentinels below.
//
// https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Message_encryption_and_decryption_instructions.html
type Error struct {
	Code   int    // WXBizMsgCrypt return code, 0 when the samples have none
	Reason string // e.g. "signature", "base64", "padding"
}

// Error returns "callback: <reason> (<code>)".
func (e *Error) Error() string {
	if e.Code == 0 {
		return "callback: " + e.Reason
	}
	return "callback: " + e.Reason + " (" + strconv.Itoa(e.Code) + ")"
}

// Sentinel errors, returned (possibly wrapped) by [Crypter], [NewServer] and
// the request checks of [Server]. They are never modified.
var (
	ErrSignature  = &Error{Code: -40001, Reason: "signature"}      // signature or msg_signature mismatch
	ErrParseXML   = &Error{Code: -40002, Reason: "xml"}            // malformed XML, DOCTYPE, missing Encrypt
	ErrAESKey     = &Error{Code: -40004, Reason: "aes_key"}        // EncodingAESKey not 43 chars [a-zA-Z0-9]
	ErrAppID      = &Error{Code: -40005, Reason: "appid"}          // trailing appid is not ours
	ErrDecrypt    = &Error{Code: -40007, Reason: "decrypt"}        // ciphertext length or PKCS#7 padding wrong
	ErrBuffer     = &Error{Code: -40008, Reason: "buffer"}         // decrypted length field inconsistent
	ErrBase64     = &Error{Code: -40010, Reason: "base64"}         // Encrypt is not standard base64
	ErrTimestamp  = &Error{Reason: "timestamp"}                    // timestamp missing or outside MaxSkew (replay)
	ErrToUserName = &Error{Reason: "to_user_name"}                 // ToUserName is not OriginalID
	ErrPlainMode  = &Error{Reason: "plaintext_refused"}            // unencrypted POST in safe mode
	ErrNoAESKey   = &Error{Reason: "encrypted_without_aes_key"}    // encrypt_type=aes but no key configured
	ErrTooLarge   = &Error{Reason: "body_too_large"}               // body over MaxBodyBytes
	errEmptyBody  = &Error{Code: -40002, Reason: "empty_body"}     // no body at all
	errNotAllowed = &Error{Reason: "method_not_allowed"}           // neither GET nor POST
	errNoEcho     = &Error{Reason: "echostr_missing"}              // GET without echostr
	errRandom     = &Error{Code: -40006, Reason: "random_failure"} // Rand failed while encrypting a reply
)

// ErrNotHandled is returned by a [Handler] that does not handle a message,
// so that [First] tries the next one. The [Server] answers "success" when
// its handler returns it.
var ErrNotHandled = errors.New("callback: message not handled")
