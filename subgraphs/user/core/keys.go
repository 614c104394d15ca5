package core

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/uptrace/bun"

	"github.com/onlinemart/mart/internal/auth"
)

// signingKey is a stored access-token signing key.
type signingKey struct {
	bun.BaseModel `bun:"table:signing_keys"`

	KID        string     `bun:"kid,pk"`
	PrivateKey []byte     `bun:"private_key"` // PKCS#8 PEM
	CreatedAt  time.Time  `bun:"created_at"`
	RetiredAt  *time.Time `bun:"retired_at"`
}

// keysLockID serialises the first key's creation across replicas (a
// transaction-scoped advisory lock; the outbox relay uses another key).
const keysLockID int64 = 0x6d617274_6b657973 // "martkeys"

// LoadKeys returns the keys that sign and verify access tokens, the
// signing one first. With keyFile set they come from that PEM file, in its
// order. Otherwise they are the database's active keys, newest first; on
// the very first start one is generated and stored, once however many
// replicas start together.
func LoadKeys(ctx context.Context, db *bun.DB, keyFile string) ([]auth.Key, error) {
	if keyFile != "" {
		data, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("signing keys: %w", err) // the error names the file
		}
		keys, err := auth.ParseKeysPEM(data)
		if err != nil {
			return nil, fmt.Errorf("signing keys: %s: %w", keyFile, err)
		}
		return keys, nil
	}
	var keys []auth.Key
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, keysLockID); err != nil {
			return err
		}
		var err error
		if keys, err = activeKeys(ctx, tx); err != nil || len(keys) > 0 {
			return err
		}
		k, err := auth.GenerateKey()
		if err != nil {
			return err
		}
		keys = []auth.Key{k}
		_, err = tx.NewInsert().Model(&signingKey{KID: k.ID, PrivateKey: k.PEM(), CreatedAt: time.Now()}).Exec(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return keys, nil
}

// activeKeys returns the keys not retired, newest first.
func activeKeys(ctx context.Context, db bun.IDB) ([]auth.Key, error) {
	var rows []signingKey
	if err := db.NewSelect().Model(&rows).Where("retired_at IS NULL").
		OrderExpr("created_at DESC, kid").Scan(ctx); err != nil {
		return nil, err
	}
	keys := make([]auth.Key, 0, len(rows))
	for _, r := range rows {
		parsed, err := auth.ParseKeysPEM(r.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", r.KID, err)
		}
		keys = append(keys, parsed[0])
	}
	return keys, nil
}
