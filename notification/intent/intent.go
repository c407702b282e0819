// Package intent decodes and validates entries of the `notification:intents`
// stream (CONTRACTS §3). Producers are other services, so every field is
// checked here once; everything downstream trusts an Intent.
//
// A field that breaks a rule makes the whole intent invalid: it is recorded
// as rejected with the returned *Error as its reason, never retried, and never
// blocks the stream. Only an entry too large to record at all (TooLarge) is
// left to the stream's dead-letter path.
package intent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Stream field names of an intent.
const (
	FieldType           = "notification_type"
	FieldProducer       = "producer"
	FieldAudienceKind   = "audience_kind"
	FieldAudienceJSON   = "audience_json"
	FieldPayloadJSON    = "payload_json"
	FieldOccurredAtMS   = "occurred_at_ms"
	FieldIdempotencyKey = "idempotency_key"
)

// Audience kinds.
const (
	AudienceAdminEmail = "admin_email"
	AudienceUser       = "user"
)

// Limits. They bound what one intent may cost (database rows, mail commands,
// User Service calls); the contract fixes none of them. Each is at least
// what a producer sends and at most what Mail takes of it
// (docs/contracts.md, "Limits").
const (
	// MaxTypeLen matches Mail's template_id (128 bytes).
	MaxTypeLen     = 128
	MaxProducerLen = 64
	// MaxIdempotencyKeyLen holds the Runtime Manager's keys,
	// runtime:<instance ID>/<job ID>, with job IDs of up to 256 bytes.
	MaxIdempotencyKeyLen = 512
	MaxUserIDLen         = 128
	// MaxUserIDs bounds the routes of one user intent.
	MaxUserIDs = 1000
	// MaxPayloadBytes bounds payload_json, which becomes template variables:
	// Mail takes this much plus the user_display_name a user route adds.
	MaxPayloadBytes = 64 << 10
	// MaxAudienceBytes bounds audience_json.
	MaxAudienceBytes = 128 << 10
	// MaxEntryBytes is the size above which an entry is not even recorded:
	// it is dead-lettered instead (see TooLarge).
	MaxEntryBytes = 1 << 20
)

var (
	typePattern     = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
	producerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]*$`)
	occurredPattern = regexp.MustCompile(`^[0-9]{1,16}$`)
)

// maxOccurredAtMS is 9999-12-31T23:59:59.999Z; later values are typos.
const maxOccurredAtMS = 253402300799999

// Intent is a validated notification intent.
type Intent struct {
	NotificationType string
	Producer         string
	AudienceKind     string
	// UserIDs are the distinct users of a `user` intent, in their first
	// order of appearance.
	UserIDs []string
	// AudienceJSON is the received audience_json ("" when absent).
	AudienceJSON string
	// PayloadJSON is the received payload_json: a JSON object.
	PayloadJSON    string
	OccurredAtMS   int64
	IdempotencyKey string
}

// Error says which field of an intent is invalid and why.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) *Error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ErrTooLarge is returned by Decode for entries above MaxEntryBytes.
var ErrTooLarge = errors.New("intent entry too large to record")

// Size is the byte size of an entry's names and values.
func Size(values map[string]string) int {
	n := 0
	for k, v := range values {
		n += len(k) + len(v)
	}
	return n
}

// TooLarge reports whether the entry exceeds MaxEntryBytes.
func TooLarge(values map[string]string) bool { return Size(values) > MaxEntryBytes }

// Decode validates the fields of one stream entry. Fields the contract does
// not name (traceparent, future additions) are ignored. The error is
// ErrTooLarge or an *Error.
func Decode(values map[string]string) (Intent, error) {
	if TooLarge(values) {
		return Intent{}, ErrTooLarge
	}
	var in Intent
	var err *Error
	if in.NotificationType, err = decodeType(values); err != nil {
		return Intent{}, err
	}
	if in.Producer, err = decodeProducer(values); err != nil {
		return Intent{}, err
	}
	if in.AudienceKind, err = decodeAudienceKind(values); err != nil {
		return Intent{}, err
	}
	in.AudienceJSON = values[FieldAudienceJSON]
	if in.UserIDs, err = decodeAudience(in.AudienceKind, in.AudienceJSON); err != nil {
		return Intent{}, err
	}
	if in.PayloadJSON, err = decodePayload(values); err != nil {
		return Intent{}, err
	}
	if in.OccurredAtMS, err = decodeOccurredAt(values); err != nil {
		return Intent{}, err
	}
	if in.IdempotencyKey, err = decodeIdempotencyKey(values); err != nil {
		return Intent{}, err
	}
	return in, nil
}

func required(values map[string]string, field string) (string, *Error) {
	v, ok := values[field]
	if !ok {
		return "", invalid(field, "is required")
	}
	if v == "" {
		return "", invalid(field, "must not be empty")
	}
	return v, nil
}

func decodeType(values map[string]string) (string, *Error) {
	v, err := required(values, FieldType)
	if err != nil {
		return "", err
	}
	if len(v) > MaxTypeLen {
		return "", invalid(FieldType, "longer than %d bytes", MaxTypeLen)
	}
	if !typePattern.MatchString(v) {
		return "", invalid(FieldType, "%s is not dotted lower-case (e.g. runtime.image_pull_failed)", quote(v))
	}
	return v, nil
}

func decodeProducer(values map[string]string) (string, *Error) {
	v, err := required(values, FieldProducer)
	if err != nil {
		return "", err
	}
	if len(v) > MaxProducerLen {
		return "", invalid(FieldProducer, "longer than %d bytes", MaxProducerLen)
	}
	if !producerPattern.MatchString(v) {
		return "", invalid(FieldProducer, "%s has characters outside A-Z a-z 0-9 _ . : -", quote(v))
	}
	return v, nil
}

func decodeAudienceKind(values map[string]string) (string, *Error) {
	v, err := required(values, FieldAudienceKind)
	if err != nil {
		return "", err
	}
	if v != AudienceAdminEmail && v != AudienceUser {
		return "", invalid(FieldAudienceKind, "%s is neither %s nor %s", quote(v), AudienceAdminEmail, AudienceUser)
	}
	return v, nil
}

// decodeAudience reads the user IDs of a `user` intent. An `admin_email`
// intent takes its recipients from configuration; audience_json is then
// optional and, when present, must still be a JSON object (it is ignored).
func decodeAudience(kind, raw string) ([]string, *Error) {
	if len(raw) > MaxAudienceBytes {
		return nil, invalid(FieldAudienceJSON, "larger than %d bytes", MaxAudienceBytes)
	}
	if kind == AudienceAdminEmail {
		if raw == "" {
			return nil, nil
		}
		if err := checkObject(raw); err != "" {
			return nil, invalid(FieldAudienceJSON, "%s", err)
		}
		return nil, nil
	}
	if raw == "" {
		return nil, invalid(FieldAudienceJSON, `is required for audience_kind user: {"user_ids":["…"]}`)
	}
	if err := checkObject(raw); err != "" {
		return nil, invalid(FieldAudienceJSON, "%s", err)
	}
	var aud struct {
		UserIDs *[]string `json:"user_ids"`
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aud); err != nil {
		return nil, invalid(FieldAudienceJSON, "want {\"user_ids\":[strings]}: %v", err)
	}
	if aud.UserIDs == nil {
		return nil, invalid(FieldAudienceJSON, "user_ids is required")
	}
	ids := *aud.UserIDs
	if len(ids) == 0 {
		return nil, invalid(FieldAudienceJSON, "user_ids must not be empty")
	}
	if len(ids) > MaxUserIDs {
		return nil, invalid(FieldAudienceJSON, "more than %d user_ids", MaxUserIDs)
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		if reason := checkUserID(id); reason != "" {
			return nil, invalid(FieldAudienceJSON, "user_ids[%d]: %s", i, reason)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func checkUserID(id string) string {
	switch {
	case id == "":
		return "empty user ID"
	case len(id) > MaxUserIDLen:
		return fmt.Sprintf("user ID longer than %d bytes", MaxUserIDLen)
	case strings.TrimSpace(id) != id:
		return "user ID has leading or trailing space"
	case hasControl(id):
		return "user ID has control characters"
	}
	return ""
}

func decodePayload(values map[string]string) (string, *Error) {
	v, err := required(values, FieldPayloadJSON)
	if err != nil {
		return "", err
	}
	if len(v) > MaxPayloadBytes {
		return "", invalid(FieldPayloadJSON, "larger than %d bytes", MaxPayloadBytes)
	}
	if reason := checkObject(v); reason != "" {
		return "", invalid(FieldPayloadJSON, "%s", reason)
	}
	return v, nil
}

// checkObject returns why raw is not one JSON object, or "".
func checkObject(raw string) string {
	if !utf8.ValidString(raw) {
		return "not valid UTF-8"
	}
	trimmed := bytes.TrimLeft([]byte(raw), " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "not a JSON object"
	}
	if !json.Valid([]byte(raw)) {
		return "malformed JSON"
	}
	// PostgreSQL jsonb cannot hold a NUL in a string, so a payload with one
	// could not be stored. What counts is the decoded value: the text
	// \u0000 with its backslash escaped ("\\u0000") is no NUL, and a
	// payload quoting it (an operator's error message about such a config
	// key) is valid.
	if hasNULString(raw) {
		return "holds a NUL character (\\u0000) in a key or string"
	}
	return ""
}

// hasNULString reports whether any key or string of the valid JSON raw
// decodes to text holding NUL.
func hasNULString(raw string) bool {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return false // the end: raw was checked to be valid JSON
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, 0) {
			return true
		}
	}
}

func decodeOccurredAt(values map[string]string) (int64, *Error) {
	v, err := required(values, FieldOccurredAtMS)
	if err != nil {
		return 0, err
	}
	if !occurredPattern.MatchString(v) {
		return 0, invalid(FieldOccurredAtMS, "%s is not a non-negative integer of Unix milliseconds", quote(v))
	}
	n, perr := strconv.ParseInt(v, 10, 64)
	if perr != nil || n > maxOccurredAtMS {
		return 0, invalid(FieldOccurredAtMS, "%s is out of range", quote(v))
	}
	return n, nil
}

func decodeIdempotencyKey(values map[string]string) (string, *Error) {
	v, ok := values[FieldIdempotencyKey]
	if !ok || v == "" {
		return "", nil
	}
	switch {
	case len(v) > MaxIdempotencyKeyLen:
		return "", invalid(FieldIdempotencyKey, "longer than %d bytes", MaxIdempotencyKeyLen)
	case !utf8.ValidString(v):
		return "", invalid(FieldIdempotencyKey, "not valid UTF-8")
	case hasControl(v):
		return "", invalid(FieldIdempotencyKey, "has control characters")
	}
	return v, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return true
		}
	}
	return false
}

// quote shows a bad value in a reason, shortened so that a huge value cannot
// bloat the record.
func quote(v string) string {
	const limit = 64
	if len(v) > limit {
		v = strings.ToValidUTF8(v[:limit], "") + "…"
	}
	return strconv.Quote(v)
}

// Sanitize makes s storable as PostgreSQL text (valid UTF-8, no NUL) and
// at most limit bytes long.
func Sanitize(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…[truncated]"
	}
	return s
}

// RawFieldLimit bounds each field kept for a rejected intent.
const RawFieldLimit = 4 << 10

// maxRawFields bounds how many fields of a rejected intent are kept.
const maxRawFields = 32

// RawFields renders an entry's fields as a JSON object for the record of a
// rejected intent: sanitised, each value at most RawFieldLimit bytes, at most
// 32 fields (by name order).
func RawFields(values map[string]string) string {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > maxRawFields {
		names = names[:maxRawFields]
	}
	out := make(map[string]string, len(names))
	for _, k := range names {
		out[Sanitize(k, 128)] = Sanitize(values[k], RawFieldLimit)
	}
	b, _ := json.Marshal(out)
	return string(b)
}
