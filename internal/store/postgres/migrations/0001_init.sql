-- wxauth schema, version 1 (PostgreSQL). NULL times mean unset.

-- A person: identity by unionid when known, else by an (appid, openid) of identities.
CREATE TABLE users (
	id                 text PRIMARY KEY,              -- "u_" + 22 base62
	unionid            text NOT NULL DEFAULT '',      -- '' when unknown
	appid              text NOT NULL,                 -- appid of the latest login
	openid             text NOT NULL,                 -- openid of the latest login
	nickname           text NOT NULL DEFAULT '',
	headimgurl         text NOT NULL DEFAULT '',
	sex                integer NOT NULL DEFAULT 0,
	province           text NOT NULL DEFAULT '',
	city               text NOT NULL DEFAULT '',
	country            text NOT NULL DEFAULT '',
	privilege          text[] NOT NULL DEFAULT '{}',
	scope              text NOT NULL DEFAULT '',
	web_token          bytea,                         -- sealed by the caller
	profile_updated_at timestamptz,
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_unionid ON users (unionid) WHERE unionid <> '';

-- Every (appid, openid) a user logged in with.
CREATE TABLE identities (
	appid      text NOT NULL,
	openid     text NOT NULL,
	user_id    text NOT NULL REFERENCES users (id),
	created_at timestamptz NOT NULL,
	PRIMARY KEY (appid, openid)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- Refresh tokens by hex SHA-256; a family is one login.
CREATE TABLE refresh_tokens (
	hash       text PRIMARY KEY,
	family_id  text NOT NULL,
	user_id    text NOT NULL,
	scope      text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE revoked_families (
	family_id  text PRIMARY KEY,
	revoked_at timestamptz NOT NULL
);

-- JWT signing keys; private keys sealed by the caller.
CREATE TABLE signing_keys (
	id         text PRIMARY KEY,
	alg        text NOT NULL,
	private    bytea NOT NULL,
	public     bytea NOT NULL,
	created_at timestamptz NOT NULL,
	sign_from  timestamptz,
	retired_at timestamptz,
	remove_at  timestamptz
);

-- Short-lived records; expired rows are absent to readers and swept periodically.
CREATE TABLE records (
	key        text PRIMARY KEY,
	val        bytea NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX records_expires_at ON records (expires_at);

-- WeChat credentials (sealed) with the fence of the lease that fetched them.
CREATE TABLE tokens (
	name       text PRIMARY KEY,
	value      bytea NOT NULL,
	expires_at timestamptz,
	fence      bigint NOT NULL
);

-- Lease rows; a row outlives its leases because it carries the fencing counter.
CREATE TABLE locks (
	name       text PRIMARY KEY,
	token      text NOT NULL,          -- '' when free
	fence      bigint NOT NULL,
	expires_at timestamptz NOT NULL    -- '-infinity' when released
);
