package core_test

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/onlinemart/mart/internal/postgres/pgtest"
	"github.com/onlinemart/mart/subgraphs/user/core"
)

func kids(keys []auth.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

// The first start generates a key, once however many replicas start
// together; later starts reuse it.
func TestKeysAreGeneratedOnceAndReused(t *testing.T) {
	db := pgtest.New(t, "user")
	ctx := context.Background()
	var wg sync.WaitGroup
	started := make([][]auth.Key, 3)
	for i := range started {
		wg.Go(func() {
			keys, err := core.LoadKeys(ctx, db.DB, "")
			if err != nil {
				t.Error(err)
			}
			started[i] = keys
		})
	}
	wg.Wait()
	restart, err := core.LoadKeys(ctx, db.DB, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, keys := range append(started, restart) {
		if len(keys) != 1 || keys[0].ID != started[0][0].ID || !keys[0].Private.Equal(started[0][0].Private) {
			t.Fatalf("starts got keys %v, want one and the same", kids(keys))
		}
	}
	var n int
	if err := db.DB.QueryRow(`SELECT count(*) FROM signing_keys`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d stored keys, want 1 (%v)", n, err)
	}
}

// The newest active key signs; retired keys are neither used nor published.
func TestNewestActiveKeySigns(t *testing.T) {
	db := pgtest.New(t, "user")
	ctx := context.Background()
	first, err := core.LoadKeys(ctx, db.DB, "")
	if err != nil {
		t.Fatal(err)
	}
	next, _ := auth.GenerateKey()
	if _, err := db.DB.Exec(`INSERT INTO signing_keys (kid, private_key, created_at) VALUES (?, ?, now() + interval '1 second')`, next.ID, next.PEM()); err != nil {
		t.Fatal(err)
	}
	keys, err := core.LoadKeys(ctx, db.DB, "")
	if err != nil || len(keys) != 2 || keys[0].ID != next.ID || keys[1].ID != first[0].ID {
		t.Fatalf("keys %v (%v), want the new one first, then the old", kids(keys), err)
	}
	if _, err := db.DB.Exec(`UPDATE signing_keys SET retired_at = now() WHERE kid = ?`, first[0].ID); err != nil {
		t.Fatal(err)
	}
	if keys, _ = core.LoadKeys(ctx, db.DB, ""); len(keys) != 1 || keys[0].ID != next.ID {
		t.Fatalf("after retiring the old key: %v", kids(keys))
	}
}

func TestKeysFromAFile(t *testing.T) {
	db := pgtest.New(t, "user")
	a, _ := auth.GenerateKey()
	b, _ := auth.GenerateKey()
	file := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(file, append(a.PEM(), b.PEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := core.LoadKeys(context.Background(), db.DB, file)
	if err != nil || len(keys) != 2 || keys[0].ID != a.ID || keys[1].ID != b.ID {
		t.Fatalf("keys %v (%v), want the file's, in order", kids(keys), err)
	}
	var n int
	if err := db.DB.QueryRow(`SELECT count(*) FROM signing_keys`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d keys stored in the database, want none (%v)", n, err)
	}
	if _, err := core.LoadKeys(context.Background(), db.DB, filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("a missing key file must fail the start")
	}
}

// A key that does not parse fails the start, and the error names the keys,
// the key and what is wrong with it once each.
func TestUnreadableKeysAreNamedOnce(t *testing.T) {
	db := pgtest.New(t, "user")
	notPKCS8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not a key")})
	if _, err := db.DB.Exec(`INSERT INTO signing_keys (kid, private_key) VALUES ('bad', ?)`, notPKCS8); err != nil {
		t.Fatal(err)
	}
	_, err := core.LoadKeys(context.Background(), db.DB, "")
	if err == nil || !strings.HasPrefix(err.Error(), "signing keys: key bad: PRIVATE KEY block 1: ") || strings.Count(err.Error(), "signing key") != 1 {
		t.Errorf("stored key that does not parse: %v", err)
	}

	file := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(file, []byte("nothing here"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = core.LoadKeys(context.Background(), db.DB, file)
	if want := "signing keys: " + file + ": no PRIVATE KEY block found"; err == nil || err.Error() != want {
		t.Errorf("key file without keys: %v, want %s", err, want)
	}
}
