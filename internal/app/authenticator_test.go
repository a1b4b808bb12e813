package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/sipdesk/sipdesk/internal/app"
)

// softKey is a software WebAuthn authenticator: one ES256 credential,
// "none" attestation, user presence and verification, a signature
// counter. It answers the options the service hands out the way a
// browser would send them back.
type softKey struct {
	t      *testing.T
	rpID   string
	origin string
	id     []byte
	key    *ecdsa.PrivateKey
	count  uint32
	handle []byte // the user handle given at registration
}

var b64u = base64.RawURLEncoding

func newSoftKey(t *testing.T) *softKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &softKey{t: t, rpID: "portal.test", origin: "http://portal.test", id: id, key: k}
}

func (k *softKey) clientData(typ string, opts *app.PasskeyOptions) []byte {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(opts.Options, &o); err != nil {
		k.t.Fatal(err)
	}
	if o.PublicKey.User.ID != "" {
		k.handle, _ = b64u.DecodeString(o.PublicKey.User.ID)
	}
	b, _ := json.Marshal(map[string]string{"type": typ, "challenge": o.PublicKey.Challenge, "origin": k.origin})
	return b
}

func (k *softKey) authData(flags byte, attested []byte) []byte {
	h := sha256.Sum256([]byte(k.rpID))
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.count)
	return append(out, attested...)
}

// create answers a registration.
func (k *softKey) create(opts *app.PasskeyOptions) app.PasskeyAnswer {
	cd := k.clientData("webauthn.create", opts)
	cose, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: k.key.X.FillBytes(make([]byte, 32)), -3: k.key.Y.FillBytes(make([]byte, 32))})
	if err != nil {
		k.t.Fatal(err)
	}
	att := make([]byte, 16) // AAGUID
	att = binary.BigEndian.AppendUint16(att, uint16(len(k.id)))
	att = append(append(att, k.id...), cose...)
	obj, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(0x45, att)})
	if err != nil {
		k.t.Fatal(err)
	}
	return k.answer(opts, map[string]any{"clientDataJSON": b64u.EncodeToString(cd), "attestationObject": b64u.EncodeToString(obj), "transports": []string{"internal"}})
}

// get answers a login with the next counter value.
func (k *softKey) get(opts *app.PasskeyOptions) app.PasskeyAnswer {
	k.count++
	cd := k.clientData("webauthn.get", opts)
	ad := k.authData(0x05, nil)
	h := sha256.Sum256(cd)
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, sha256Sum(append(append([]byte{}, ad...), h[:]...)))
	if err != nil {
		k.t.Fatal(err)
	}
	return k.answer(opts, map[string]any{"clientDataJSON": b64u.EncodeToString(cd), "authenticatorData": b64u.EncodeToString(ad),
		"signature": b64u.EncodeToString(sig), "userHandle": b64u.EncodeToString(k.handle)})
}

func sha256Sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func (k *softKey) answer(opts *app.PasskeyOptions, resp map[string]any) app.PasskeyAnswer {
	b, _ := json.Marshal(map[string]any{"id": b64u.EncodeToString(k.id), "rawId": b64u.EncodeToString(k.id), "type": "public-key",
		"response": resp, "clientExtensionResults": map[string]any{}})
	return app.PasskeyAnswer{Ceremony: opts.Ceremony, Response: string(b)}
}
