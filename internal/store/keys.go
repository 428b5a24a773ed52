package store

// KeyPrefix is a namespace of [Records] keys (and of [Broker] topics): every
// namespace any package of wxauth writes is declared here, once, with its
// owner and what it holds, so that no two packages share one by accident and
// the routing of records by prefix (cmd/authsvc: memory, SQLite, Redis)
// names them instead of repeating strings.
type KeyPrefix string

// The record namespaces, by owner.
const (
	// Package login (the OpenID Provider and its WeChat leg).
	KeyState      KeyPrefix = "state:"      // a WeChat leg's state: its flow (JSON), for the state TTL
	KeyClaim      KeyPrefix = "cb:"         // the first callback of a state claimed it (RFC 3339 time)
	KeyDone       KeyPrefix = "done:"       // the sealed outcome of a state's first callback (duplicate callbacks replay it)
	KeyCode       KeyPrefix = "code:"       // hex SHA-256 of an authorization code: its grant (JSON), 60 s
	KeyCodeUsed   KeyPrefix = "codeused:"   // hex SHA-256 of a redeemed code: the sid it issued (reuse revokes it)
	KeyFamily     KeyPrefix = "family:"     // sid of a client's login: client, scopes, auth_time, amr (JSON)
	KeyRevoked    KeyPrefix = "revoked:"    // package session: a revoked sid, until its last access token expires
	KeyDedup      KeyPrefix = "dedup:"      // package callback: a delivered message (MsgId or event hash) and its reply
	KeyQR         KeyPrefix = "qr:"         // package qrlogin: a QR login attempt (JSON); also its Broker topic
	KeyQRScene    KeyPrefix = "qrscene:"    // package qrlogin: a QR scene: the attempt id it belongs to
	KeyQRUsed     KeyPrefix = "qrused:"     // package qrlogin: an attempt completed once
	KeyQRClaim    KeyPrefix = "qrclaim:"    // package qrlogin: an attempt claimed by the first scan (openid)
	KeyProxyToken KeyPrefix = "proxytoken:" // package proxy: hex SHA-256 of a proxy token: its client
)

// Key returns the record key of id in namespace p.
func (p KeyPrefix) Key(id string) string { return string(p) + id }
