package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"galaxy/user/store"
)

func decodeCreateBytes(body []byte) (store.User, error) {
	return decodeCreate(httptest.NewRequest("POST", "/api/v1/internal/users", bytes.NewReader(body)))
}

func decodePatchBytes(body []byte) (store.Patch, error) {
	return decodePatch(httptest.NewRequest("PATCH", "/api/v1/internal/users/x", bytes.NewReader(body)))
}

func TestDecodeCreateDefaults(t *testing.T) {
	u, err := decodeCreateBytes([]byte(`{"email":"Ada.Lovelace@Example.org"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := store.User{Email: "Ada.Lovelace@Example.org", DisplayName: "Ada.Lovelace", Locale: "en", EmailNotifications: true}
	if u != want {
		t.Fatalf("got %+v, want %+v", u, want)
	}
}

func TestCanonicalLocale(t *testing.T) {
	for in, want := range map[string]string{
		"en": "en", "EN_us": "en-US", "fr-ca": "fr-CA", "zh-hant-tw": "zh-Hant-TW", "iw": "he", "en-GB-oed": "en-GB-oxendict",
	} {
		got, err := canonicalLocale(in)
		if err != nil || got != want {
			t.Errorf("canonicalLocale(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "und", "x-private", "english", "en--US", strings.Repeat("a", 65)} {
		if got, err := canonicalLocale(in); err == nil {
			t.Errorf("canonicalLocale(%q) = %q, want an error", in, got)
		}
	}
}

// FuzzDecodeUser feeds arbitrary bodies to the create and patch decoders.
// Whatever they accept must satisfy the validation rules, and must come out
// the same when sent again: canonical values are fixed points. Seeds are in
// testdata/fuzz/FuzzDecodeUser.
func FuzzDecodeUser(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		if u, err := decodeCreateBytes(body); err == nil {
			if u.ID != "" && !validUserID(u.ID) {
				t.Fatalf("accepted user ID %q", u.ID)
			}
			checkValid(t, u.Email, u.DisplayName, u.Locale)
			again, err := decodeCreateBytes(marshal(t, map[string]any{
				"user_id": u.ID, "email": u.Email, "display_name": u.DisplayName,
				"locale": u.Locale, "email_notifications": u.EmailNotifications,
			}, u.ID == ""))
			if err != nil || again != u {
				t.Fatalf("accepted %+v, but sending it again gives %+v, %v", u, again, err)
			}
		}
		if p, err := decodePatchBytes(body); err == nil {
			if p == (store.Patch{}) {
				t.Fatal("accepted an empty patch")
			}
			if p.Email != nil {
				checkValid(t, *p.Email, "x", "en")
			}
			if p.DisplayName != nil {
				checkValid(t, "a@b", *p.DisplayName, "en")
			}
			if p.Locale != nil {
				checkValid(t, "a@b", "x", *p.Locale)
			}
		}
	})
}

// FuzzDecodeUserFields builds well-formed bodies from arbitrary field values,
// which reaches the field rules far faster than mutating raw JSON does.
func FuzzDecodeUserFields(f *testing.F) {
	f.Add("a@example.com", "Ann", "en-us", "u-1")
	f.Add("\u0085@example.com", "", "und", "")
	f.Add("b@[127.0.0.1]", "\u2028", "zh-hant-tw-x-priv", "_x")
	f.Add("\u3000@example.com", "", "en-GB-oed", "u.1")
	f.Fuzz(func(t *testing.T, email, displayName, locale, userID string) {
		body := map[string]any{"email": email, "locale": locale}
		if displayName != "" {
			body["display_name"] = displayName
		}
		if userID != "" {
			body["user_id"] = userID
		}
		if u, err := decodeCreateBytes(marshal(t, body, false)); err == nil {
			checkValid(t, u.Email, u.DisplayName, u.Locale)
		}
	})
}

func checkValid(t *testing.T, email, displayName, locale string) {
	t.Helper()
	if got, err := checkEmail(email); err != nil || got != email {
		t.Fatalf("accepted e-mail %q: %q, %v", email, got, err)
	}
	if _, err := checkDisplayName(displayName); err != nil {
		t.Fatalf("accepted display name %q: %v", displayName, err)
	}
	if got, err := canonicalLocale(locale); err != nil || got != locale {
		t.Fatalf("accepted locale %q is not canonical: %q, %v", locale, got, err)
	}
}

func marshal(t *testing.T, m map[string]any, dropID bool) []byte {
	t.Helper()
	if dropID {
		delete(m, "user_id")
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
