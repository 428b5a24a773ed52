-- wxauth schema, version 1. Times are Unix nanoseconds (INTEGER); 0 means unset.

-- A person: identity by unionid when known, else by an (appid, openid) of identities.
CREATE TABLE users (
	id                 TEXT PRIMARY KEY,              -- "u_" + 22 base62
	unionid            TEXT NOT NULL DEFAULT '',      -- '' when unknown
	appid              TEXT NOT NULL,                 -- appid of the latest login
	openid             TEXT NOT NULL,                 -- openid of the latest login
	nickname           TEXT NOT NULL DEFAULT '',
	headimgurl         TEXT NOT NULL DEFAULT '',
	sex                INTEGER NOT NULL DEFAULT 0,
	province           TEXT NOT NULL DEFAULT '',
	city               TEXT NOT NULL DEFAULT '',
	country            TEXT NOT NULL DEFAULT '',
	privilege          TEXT NOT NULL DEFAULT '[]',    -- JSON array of strings
	scope              TEXT NOT NULL DEFAULT '',
	web_token          BLOB,                          -- sealed by the caller
	profile_updated_at INTEGER NOT NULL DEFAULT 0,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_unionid ON users (unionid) WHERE unionid <> '';

-- Every (appid, openid) a user logged in with.
CREATE TABLE identities (
	appid      TEXT NOT NULL,
	openid     TEXT NOT NULL,
	user_id    TEXT NOT NULL REFERENCES users (id),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (appid, openid)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- Refresh tokens by hex SHA-256; a family is one login.
CREATE TABLE refresh_tokens (
	hash       TEXT PRIMARY KEY,
	family_id  TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	scope      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revoked_families (
	family_id  TEXT PRIMARY KEY,
	revoked_at INTEGER NOT NULL
);

-- JWT signing keys; private keys sealed by the caller.
CREATE TABLE signing_keys (
	id         TEXT PRIMARY KEY,
	alg        TEXT NOT NULL,
	private    BLOB NOT NULL,
	public     BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	sign_from  INTEGER NOT NULL,
	retired_at INTEGER NOT NULL,
	remove_at  INTEGER NOT NULL
);

-- Short-lived records; expired rows are absent to readers and swept periodically.
CREATE TABLE records (
	key        TEXT PRIMARY KEY,
	val        BLOB NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX records_expires_at ON records (expires_at);

-- WeChat credentials (sealed) with the fence of the lease that fetched them.
CREATE TABLE tokens (
	name       TEXT PRIMARY KEY,
	value      BLOB NOT NULL,
	expires_at INTEGER NOT NULL,
	fence      INTEGER NOT NULL
);

-- Lease rows; a row outlives its leases because it carries the fencing counter.
CREATE TABLE locks (
	name       TEXT PRIMARY KEY,
	token      TEXT NOT NULL,     -- '' when free
	fence      INTEGER NOT NULL,
	expires_at INTEGER NOT NULL   -- 0 when released
);
