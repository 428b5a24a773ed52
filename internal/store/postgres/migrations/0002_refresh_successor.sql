-- The hash a refresh token was rotated into, so that a second rotation
-- within the grace window lands on the same successor instead of forking
-- the family; '' until rotated.
ALTER TABLE refresh_tokens ADD COLUMN next_hash text NOT NULL DEFAULT '';
