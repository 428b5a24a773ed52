package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/wxauth/wxauth/internal/store"
)

// UpsertUser finds the user by u.UnionID, else by (u.AppID, u.OpenID),
// creating it when none is found, and applies u as [store.Users] documents.
// It never fails.
func (s *Store) UpsertUser(ctx context.Context, u store.User, now time.Time) (store.User, error) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	id := identity{u.AppID, u.OpenID}
	var (
		cur   store.User
		found bool
	)
	if u.UnionID != "" {
		if uid, ok := s.byUnionID[u.UnionID]; ok {
			cur, found = s.users[uid], true
		}
	}
	if !found {
		if uid, ok := s.byIdentity[id]; ok {
			cur, found = s.users[uid], true
			if cur.UnionID == "" && u.UnionID != "" {
				cur.UnionID = u.UnionID
				s.byUnionID[u.UnionID] = cur.ID
			}
		}
	}
	if !found {
		cur = store.User{ID: store.NewUserID(), UnionID: u.UnionID, CreatedAt: now}
		if u.UnionID != "" {
			s.byUnionID[u.UnionID] = cur.ID
		}
	}
	cur = merge(cur, u, now)
	s.byIdentity[id] = cur.ID
	s.users[cur.ID] = cur
	return copyUser(cur), nil
}

// merge applies the fields of u that UpsertUser replaces to cur.
func merge(cur, u store.User, now time.Time) store.User {
	cur.AppID, cur.OpenID = u.AppID, u.OpenID
	if !u.ProfileUpdatedAt.IsZero() {
		cur.Nickname, cur.HeadImgURL, cur.Sex = u.Nickname, u.HeadImgURL, u.Sex
		cur.Province, cur.City, cur.Country = u.Province, u.City, u.Country
		cur.Privilege = slices.Clone(u.Privilege)
		cur.ProfileUpdatedAt = u.ProfileUpdatedAt
	}
	if u.Scope != "" {
		cur.Scope = u.Scope
	}
	if u.WebToken != nil {
		cur.WebToken = clone(u.WebToken)
	}
	cur.UpdatedAt = now
	return cur
}

// copyUser returns u with its slices copied, so callers cannot reach the
// stored ones.
func copyUser(u store.User) store.User {
	u.Privilege = slices.Clone(u.Privilege)
	if u.WebToken != nil {
		u.WebToken = clone(u.WebToken)
	}
	return u
}

// GetUser returns the user with this ID, or store.ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return copyUser(u), nil
}

// FindUser returns the user linked to (appID, openID), or store.ErrNotFound.
func (s *Store) FindUser(ctx context.Context, appID, openID string) (store.User, error) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	uid, ok := s.byIdentity[identity{appID, openID}]
	if !ok {
		return store.User{}, store.ErrNotFound
	}
	return copyUser(s.users[uid]), nil
}

// CreateRefreshToken stores t, or returns store.ErrAlreadyExists when
// t.Hash is taken.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if _, ok := s.refresh[t.Hash]; ok {
		return store.ErrAlreadyExists
	}
	s.refresh[t.Hash] = t
	return nil
}

// RotateRefreshToken marks oldHash used and stores next as its successor,
// under the store's lock, as [store.RefreshTokens] documents; the time
// compared is [store.RotationTime] of now and the store's clock. Errors:
// store.ErrNotFound (unknown, expired, revoked), store.ErrReused (family
// revoked), store.ErrAlreadyExists when next.Hash is taken or the token was
// rotated into another successor within grace, and a plain error when
// next.FamilyID differs from the old token's.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, now time.Time, grace time.Duration) (store.RefreshToken, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	at := store.RotationTime(now, s.now)
	old, ok := s.refresh[oldHash]
	if !ok || !at.Before(old.ExpiresAt) {
		return store.RefreshToken{}, store.ErrNotFound
	}
	if _, gone := s.revoked[old.FamilyID]; gone {
		return store.RefreshToken{}, store.ErrNotFound
	}
	if next.FamilyID != old.FamilyID {
		return store.RefreshToken{}, fmt.Errorf("memory: next refresh token is not of the rotated family")
	}
	if store.UsedOutsideGrace(old.UsedAt, at, grace) {
		s.revoked[old.FamilyID] = at
		return store.RefreshToken{}, store.ErrReused
	}
	if !old.UsedAt.IsZero() {
		// Within grace: the same successor again, or nothing.
		if s.successor[oldHash] != next.Hash {
			return store.RefreshToken{}, store.ErrAlreadyExists
		}
		return old, nil
	}
	if _, taken := s.refresh[next.Hash]; taken {
		return store.RefreshToken{}, store.ErrAlreadyExists
	}
	old.UsedAt = at
	s.refresh[oldHash] = old
	s.successor[oldHash] = next.Hash
	s.refresh[next.Hash] = next
	return old, nil
}

// GetRefreshToken returns the record for hash, or store.ErrNotFound when it
// is unknown or its family is revoked.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (store.RefreshToken, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	t, ok := s.refresh[hash]
	if !ok {
		return store.RefreshToken{}, store.ErrNotFound
	}
	if _, gone := s.revoked[t.FamilyID]; gone {
		return store.RefreshToken{}, store.ErrNotFound
	}
	return t, nil
}

// RevokeFamily revokes every refresh token of familyID (those rotated into
// it later too); it never fails.
func (s *Store) RevokeFamily(ctx context.Context, familyID string, now time.Time) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	if _, gone := s.revoked[familyID]; !gone {
		s.revoked[familyID] = now
	}
	return nil
}

// ListKeys returns copies of every stored key, oldest (CreatedAt) first.
func (s *Store) ListKeys(ctx context.Context) ([]store.SigningKey, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	return copyKeys(s.keys), nil
}

// UpdateKeys runs update on a copy of the keys under the store's lock and
// stores what it returns, sorted oldest first. An error from update is
// returned as is and nothing changes.
func (s *Store) UpdateKeys(ctx context.Context, update func(old []store.SigningKey) ([]store.SigningKey, error)) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	next, err := update(copyKeys(s.keys))
	if err != nil {
		return err
	}
	next = copyKeys(next)
	sort.SliceStable(next, func(i, j int) bool { return next[i].CreatedAt.Before(next[j].CreatedAt) })
	s.keys = next
	return nil
}

// copyKeys deep-copies ks.
func copyKeys(ks []store.SigningKey) []store.SigningKey {
	out := make([]store.SigningKey, len(ks))
	for i, k := range ks {
		k.Private = clone(k.Private)
		k.Public = clone(k.Public)
		out[i] = k
	}
	return out
}
