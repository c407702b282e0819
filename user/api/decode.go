package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"galaxy/platform/httpapi"
	"galaxy/user/store"
)

// Limits on field values; see docs/user.md.
const (
	maxEmailBytes       = 254 // RFC 5321 path limit less the angle brackets
	maxLocalPartBytes   = 64  // RFC 5321
	maxLocaleBytes      = 64
	maxDisplayNameRunes = 200
	// DefaultLocale is the locale of a user created without one; it is the
	// Mail Service's default locale too.
	DefaultLocale = "en"
)

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// validUserID reports whether id has the contract's user ID syntax.
func validUserID(id string) bool { return userIDPattern.MatchString(id) }

// userBody is the JSON body of create and patch. Each field is kept raw and
// read on its own, so that an error names its field and an explicit null is
// refused instead of passing for "absent".
type userBody struct {
	UserID             json.RawMessage `json:"user_id"`
	Email              json.RawMessage `json:"email"`
	DisplayName        json.RawMessage `json:"display_name"`
	Locale             json.RawMessage `json:"locale"`
	EmailNotifications json.RawMessage `json:"email_notifications"`
}

// fields is userBody read and validated; nil means absent.
type fields struct {
	userID, email, displayName, locale *string
	emailNotifications                 *bool
}

// decodeCreate reads a create body. The user ID is left empty when absent
// (the caller generates one); display_name defaults to the address's local
// part, locale to DefaultLocale, email_notifications to true.
func decodeCreate(r *http.Request) (store.User, error) {
	f, err := decodeFields(r)
	if err != nil {
		return store.User{}, err
	}
	if f.email == nil {
		return store.User{}, errors.New("email: required")
	}
	u := store.User{Email: *f.email, Locale: DefaultLocale, EmailNotifications: true}
	if f.userID != nil {
		u.ID = *f.userID
	}
	if f.displayName != nil {
		u.DisplayName = *f.displayName
	} else {
		u.DisplayName = u.Email[:strings.LastIndexByte(u.Email, '@')]
	}
	if f.locale != nil {
		u.Locale = *f.locale
	}
	if f.emailNotifications != nil {
		u.EmailNotifications = *f.emailNotifications
	}
	return u, nil
}

// decodePatch reads a patch body: any of email, display_name, locale and
// email_notifications, at least one of them.
func decodePatch(r *http.Request) (store.Patch, error) {
	f, err := decodeFields(r)
	if err != nil {
		return store.Patch{}, err
	}
	if f.userID != nil {
		return store.Patch{}, errors.New("user_id: cannot be changed")
	}
	p := store.Patch{Email: f.email, DisplayName: f.displayName, Locale: f.locale, EmailNotifications: f.emailNotifications}
	if p == (store.Patch{}) {
		return store.Patch{}, errors.New("request body names no field to change (email, display_name, locale, email_notifications)")
	}
	return p, nil
}

func decodeFields(r *http.Request) (fields, error) {
	var b userBody
	if err := httpapi.DecodeJSON(r, &b); err != nil {
		return fields{}, err
	}
	var f fields
	var err error
	if f.userID, err = stringField("user_id", b.UserID, checkUserID); err != nil {
		return fields{}, err
	}
	if f.email, err = stringField("email", b.Email, checkEmail); err != nil {
		return fields{}, err
	}
	if f.displayName, err = stringField("display_name", b.DisplayName, checkDisplayName); err != nil {
		return fields{}, err
	}
	if f.locale, err = stringField("locale", b.Locale, canonicalLocale); err != nil {
		return fields{}, err
	}
	if f.emailNotifications, err = boolField("email_notifications", b.EmailNotifications); err != nil {
		return fields{}, err
	}
	return f, nil
}

// stringField reads an optional string field and passes it through check,
// which returns the value to keep (possibly canonicalised).
func stringField(name string, raw json.RawMessage, check func(string) (string, error)) (*string, error) {
	if raw == nil {
		return nil, nil
	}
	if isNull(raw) {
		return nil, fmt.Errorf("%s: must not be null", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: must be a string", name)
	}
	v, err := check(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &v, nil
}

func boolField(name string, raw json.RawMessage) (*bool, error) {
	if raw == nil {
		return nil, nil
	}
	var v bool
	if isNull(raw) || json.Unmarshal(raw, &v) != nil {
		return nil, fmt.Errorf("%s: must be true or false", name)
	}
	return &v, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func checkUserID(id string) (string, error) {
	if !validUserID(id) {
		return "", fmt.Errorf("%q is not a valid user ID (1-128 of A-Z a-z 0-9 _ . -, starting with a letter or digit)", id)
	}
	return id, nil
}

// checkEmail accepts a bare address exactly as net/mail reads it: no display
// name, no angle brackets, no comments, no quoting that net/mail would
// rewrite. The address later lands in mail headers, hence the CR/LF rule.
func checkEmail(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("must not contain CR or LF")
	}
	if len(s) > maxEmailBytes {
		return "", fmt.Errorf("longer than %d bytes", maxEmailBytes)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an e-mail address: %v", s, err)
	}
	if addr.Name != "" || addr.Address != s {
		return "", fmt.Errorf("%q is not a bare address such as name@example.com", s)
	}
	// net/mail lets any non-ASCII rune into an atom, C1 controls and
	// no-break spaces included.
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", errors.New("must not contain control characters")
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return "", errors.New("must not contain spaces")
	}
	if at := strings.LastIndexByte(s, '@'); at > maxLocalPartBytes {
		return "", fmt.Errorf("local part longer than %d bytes", maxLocalPartBytes)
	}
	return s, nil
}

// checkDisplayName refuses names that would be blank or would break the
// templates and headers they are rendered into.
func checkDisplayName(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("must not be blank")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxDisplayNameRunes {
		return "", fmt.Errorf("longer than %d characters", maxDisplayNameRunes)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", errors.New("must not contain control characters")
	}
	return s, nil
}

// canonicalLocale parses a BCP 47 tag and returns its canonical form
// ("EN_us" → "en-US", "iw" → "he"). A tag must name a language: "und" and
// private-use-only tags are refused.
func canonicalLocale(s string) (string, error) {
	if len(s) > maxLocaleBytes {
		return "", fmt.Errorf("longer than %d bytes", maxLocaleBytes)
	}
	tag, err := language.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a BCP 47 language tag: %v", s, err)
	}
	if _, conf := tag.Base(); conf != language.Exact {
		return "", fmt.Errorf("%q names no language", s)
	}
	return tag.String(), nil
}
