package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// refreshToken is one stored refresh token. The tokens of one sign-in
// share a family, whose id is the session id access tokens carry.
type refreshToken struct {
	bun.BaseModel `bun:"table:refresh_tokens"`

	ID        string     `bun:"id,pk,type:uuid"`
	FamilyID  string     `bun:"family_id,type:uuid"`
	UserID    string     `bun:"user_id,type:uuid"`
	TokenHash []byte     `bun:"token_hash"`
	ExpiresAt time.Time  `bun:"expires_at"`
	UsedAt    *time.Time `bun:"used_at"`
	RevokedAt *time.Time `bun:"revoked_at"`
	CreatedAt time.Time  `bun:"created_at"`
}

const refreshTokenBytes = 32

// newRefreshToken stores a new token of family for userID and returns it.
// Only its hash is kept: a copy of the table does not sign anyone in.
func newRefreshToken(ctx context.Context, db bun.IDB, userID, family string, now time.Time, ttl time.Duration) (string, error) {
	raw := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(raw)
	t := &refreshToken{
		ID: id.String(), FamilyID: family, UserID: userID, TokenHash: sum[:],
		ExpiresAt: now.Add(ttl), CreatedAt: now,
	}
	if _, err := db.NewInsert().Model(t).Exec(ctx); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// hashToken returns the stored hash of a token as clients present it, or
// false when it cannot be one of ours.
func hashToken(token string) ([]byte, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != refreshTokenBytes {
		return nil, false
	}
	sum := sha256.Sum256(raw)
	return sum[:], true
}

// revokeFamily ends a session: none of its tokens refreshes any more.
func revokeFamily(ctx context.Context, db bun.IDB, family string, now time.Time) error {
	_, err := db.NewUpdate().Model((*refreshToken)(nil)).Set("revoked_at = ?", now).
		Where("family_id = ?", family).Where("revoked_at IS NULL").Exec(ctx)
	return err
}
