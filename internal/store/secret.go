package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretKeyFile is the key file LoadSecretKey reads from the data folder.
const SecretKeyFile = "secret.key"

// SecretKeyLen is the length of the secret key: AES-256.
const SecretKeyLen = 32

// LoadSecretKey returns the key that encrypts secrets at rest. A non-empty
// fromEnv (SIPDESK_SECRET_KEY) is 32 bytes in base64 (standard or URL
// alphabet, padded or not) or 64 hex digits. Otherwise the key is read from
// dataDir/secret.key, which is created with 32 random bytes (mode 0600) when
// it does not exist yet.
func LoadSecretKey(dataDir, fromEnv string) ([]byte, error) {
	if s := strings.TrimSpace(fromEnv); s != "" {
		k, ok := parseKeyText(s)
		if !ok {
			return nil, errors.New("store: secret key must be 32 bytes in base64 or 64 hex digits")
		}
		return k, nil
	}
	if dataDir == "" {
		return nil, errors.New("store: no secret key given and no data folder to keep one in")
	}
	path := filepath.Join(dataDir, SecretKeyFile)
	k, err := readKeyFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create data folder: %w", err)
	}
	k = make([]byte, SecretKeyLen)
	rand.Read(k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process created it meanwhile
		return readKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: create secret key: %w", err)
	}
	if _, err := f.Write(k); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("store: write secret key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("store: write secret key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("store: write secret key: %w", err)
	}
	return k, nil
}

// readKeyFile reads a key file: 32 raw bytes, or the text forms that
// SIPDESK_SECRET_KEY accepts.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("store: read secret key: %w", err)
	}
	if len(b) == SecretKeyLen {
		return b, nil
	}
	if k, ok := parseKeyText(strings.TrimSpace(string(b))); ok {
		return k, nil
	}
	return nil, fmt.Errorf("store: %s: a secret key must be 32 bytes (raw, base64 or hex)", path)
}

func parseKeyText(s string) ([]byte, bool) {
	if len(s) == 2*SecretKeyLen {
		if k, err := hex.DecodeString(s); err == nil {
			return k, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == SecretKeyLen {
			return k, true
		}
	}
	return nil, false
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != SecretKeyLen {
		return nil, fmt.Errorf("store: secret key must be %d bytes, got %d", SecretKeyLen, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return aead, nil
}

// seal encrypts a secret for column col with AES-256-GCM and a random nonce
// and returns base64(nonce||ciphertext); the column name is bound as
// additional data so that values cannot be swapped between columns. The
// empty string stays empty.
func (db *DB) seal(col, plain string) string {
	if plain == "" {
		return ""
	}
	nonce := make([]byte, db.aead.NonceSize(), db.aead.NonceSize()+len(plain)+db.aead.Overhead())
	rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(db.aead.Seal(nonce, nonce, []byte(plain), []byte(col)))
}

// open decrypts what seal returned.
func (db *DB) open(col, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < db.aead.NonceSize() {
		return "", fmt.Errorf("store: %s: malformed encrypted value", col)
	}
	n := db.aead.NonceSize()
	plain, err := db.aead.Open(nil, b[:n], b[n:], []byte(col))
	if err != nil {
		return "", fmt.Errorf("store: %s: cannot decrypt (wrong secret key?): %w", col, err)
	}
	return string(plain), nil
}
