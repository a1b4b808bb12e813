package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sipdesk/sipdesk"
)

func testKeyBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func strconvI(v int64) string { return strconv.FormatInt(v, 10) }

func TestLoadSecretKeyFromEnv(t *testing.T) {
	k := testKeyBytes(SecretKeyLen)
	for name, s := range map[string]string{
		"std base64":       base64.StdEncoding.EncodeToString(k),
		"url base64":       base64.URLEncoding.EncodeToString(k),
		"unpadded base64":  base64.RawURLEncoding.EncodeToString(k),
		"hex":              hex.EncodeToString(k),
		"hex with newline": hex.EncodeToString(k) + "\n",
		"upper-case hex":   strings.ToUpper(hex.EncodeToString(k)),
	} {
		t.Run(name+" is accepted", func(t *testing.T) {
			got, err := LoadSecretKey(t.TempDir(), s)
			if err != nil || !bytes.Equal(got, k) {
				t.Errorf("LoadSecretKey(%q) = %x, %v; want %x", s, got, err, k)
			}
		})
	}
	for name, s := range map[string]string{
		"short base64": base64.StdEncoding.EncodeToString(k[:16]),
		"short hex":    hex.EncodeToString(k[:31]),
		"garbage":      "not a key at all",
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			if _, err := LoadSecretKey(t.TempDir(), s); err == nil {
				t.Errorf("LoadSecretKey(%q) succeeded", s)
			}
		})
	}
}

func TestLoadSecretKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadSecretKey(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != SecretKeyLen {
		t.Fatalf("key of %d bytes", len(k1))
	}
	fi, err := os.Stat(filepath.Join(dir, SecretKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != SecretKeyLen {
		t.Errorf("key file mode %o size %d, want 0600 and %d", fi.Mode().Perm(), fi.Size(), SecretKeyLen)
	}
	k2, err := LoadSecretKey(dir, "")
	if err != nil || !bytes.Equal(k1, k2) {
		t.Errorf("second LoadSecretKey = %x, %v; want the same key %x", k2, err, k1)
	}
	// A key written by an operator as hex text works too.
	os.WriteFile(filepath.Join(dir, SecretKeyFile), []byte(hex.EncodeToString(k1)+"\n"), 0o600)
	if k3, err := LoadSecretKey(dir, ""); err != nil || !bytes.Equal(k1, k3) {
		t.Errorf("hex key file = %x, %v", k3, err)
	}
	os.WriteFile(filepath.Join(dir, SecretKeyFile), []byte("short"), 0o600)
	if _, err := LoadSecretKey(dir, ""); err == nil {
		t.Error("a malformed key file was accepted")
	}
}

func TestSealedSecrets(t *testing.T) {
	db := openT(t, Options{DataDir: t.TempDir(), SecretKey: testKey(t)})
	a, b := db.seal(colJWTSecret, "same"), db.seal(colJWTSecret, "same")
	if a == b {
		t.Error("two encryptions of one value are equal: the nonce is not random")
	}
	if got, err := db.open(colJWTSecret, a); err != nil || got != "same" {
		t.Errorf("open = %q, %v", got, err)
	}
	if _, err := db.open(colJWTPrevSecret, a); err == nil {
		t.Error("a value sealed for one column opened as another")
	}
	if db.seal(colJWTSecret, "") != "" {
		t.Error("the empty secret is not stored empty")
	}
}

// TestWrongSecretKey: a store opened with another key cannot read the JWT
// secrets and says so, rather than returning garbage.
func TestWrongSecretKey(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, Options{DataDir: dir, SecretKey: testKey(t)})
	insertSecrets(t, db)
	db.Close()
	other := openT(t, Options{DataDir: dir, SecretKey: testKey(t)})
	err := other.View(t.Context(), func(tx sipdesk.Tx) error {
		_, err := tx.SIPAccounts(0)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "decrypt") {
		t.Errorf("reading with the wrong key: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	for name, o := range map[string]Options{
		"short key":        {DataDir: t.TempDir(), SecretKey: []byte("short")},
		"no data folder":   {SecretKey: testKeyBytes(SecretKeyLen)},
		"unknown database": {DSN: "mysql://root@localhost/x", SecretKey: testKeyBytes(SecretKeyLen)},
	} {
		t.Run(name, func(t *testing.T) {
			if db, err := Open(t.Context(), o); err == nil {
				db.Close()
				t.Error("Open succeeded")
			}
		})
	}
}

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                              "SELECT 1",
		"a = ? AND b = ?":                       "a = $1 AND b = $2",
		"x = '?' AND y = ? AND \"c?\" = ?":      "x = '?' AND y = $1 AND \"c?\" = $2",
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)": "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	} {
		if got := rebindDollar(in); got != want {
			t.Errorf("rebindDollar(%q) = %q, want %q", in, got, want)
		}
	}
}
