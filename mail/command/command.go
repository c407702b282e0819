// Package command decodes and validates mail delivery commands, the unit of
// work the Mail Service accepts from the `mail:delivery_commands` stream
// (every value a string, JSON inside `*_json` fields) and from
// `POST /api/v1/internal/deliveries` (one JSON object).
//
// Both doors produce the same Command, and Hash gives both the same
// fingerprint, so a command first seen on the stream and replayed over HTTP
// with the same idempotency key is recognised as the same command.
package command

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"galaxy/platform/streams"
)

// Payload modes.
const (
	ModeTemplate = "template"
	ModeRendered = "rendered"
)

// Limits. They keep one command well below the stream and database sizes
// that would hurt, and they are generous for real mail. Each is at least
// what the services upstream accept (docs/contracts.md, "Limits"): a value
// the User Service or Notification took must never be refused here, where
// the only way out is a dead letter nobody is mailed about.
const (
	MaxRecipients = 100 // to + cc + bcc
	MaxAddressLen = 320
	// MaxIdempotencyKey holds Notification's route keys,
	// notification:<entry ID>/email:email:<address>, for any address Mail
	// accepts (13 + 41 + 13 + 320 bytes).
	MaxIdempotencyKey = 512
	MaxSubjectLen     = 998 // RFC 5322 line limit
	MaxBodyBytes      = 512 << 10
	// MaxVariablesBytes is Notification's payload_json limit (64 KiB) plus
	// room for the user_display_name it adds on user routes (200
	// characters, at most 1 202 bytes as JSON).
	MaxVariablesBytes = 66 << 10
	// MaxLocaleLen is the User Service's locale limit: a user's locale
	// reaches Mail as Notification's command locale.
	MaxLocaleLen        = 64
	maxAddressListBytes = 64 << 10
)

var (
	sourcePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	templateIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)
)

// Command is one validated delivery request.
type Command struct {
	Source      string
	PayloadMode string
	// Template mode.
	TemplateID string
	// Locale is the canonical BCP 47 form of the requested locale, or empty
	// (the service's default locale applies).
	Locale string
	// Variables is the template_variables object; numbers are json.Number so
	// that they render and store exactly as the producer wrote them.
	Variables map[string]any
	// Rendered mode.
	Subject  string
	TextBody string
	HTMLBody string
	// Addresses as given (trimmed); each parses with net/mail.
	To      []string
	Cc      []string
	Bcc     []string
	ReplyTo string

	IdempotencyKey string
	RequestedAtMS  int64
}

// Error is a validation failure naming the field at fault.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Stream field names (CONTRACTS §3).
const (
	FieldSource            = "source"
	FieldPayloadMode       = "payload_mode"
	FieldTemplateID        = "template_id"
	FieldLocale            = "locale"
	FieldTemplateVariables = "template_variables_json"
	FieldSubject           = "subject"
	FieldTextBody          = "text_body"
	FieldHTMLBody          = "html_body"
	FieldTo                = "to_json"
	FieldCc                = "cc_json"
	FieldBcc               = "bcc_json"
	FieldReplyTo           = "reply_to"
	FieldIdempotencyKey    = "idempotency_key"
	FieldRequestedAtMS     = "requested_at_ms"
)

// streamFields are the command's fields of a stream entry. The trace fields
// (streams.TraceFields) are accepted beside them: producers' stream clients
// add them, and they are the entry's trace, not part of the command.
var streamFields = map[string]bool{
	FieldSource: true, FieldPayloadMode: true, FieldTemplateID: true, FieldLocale: true,
	FieldTemplateVariables: true, FieldSubject: true, FieldTextBody: true, FieldHTMLBody: true,
	FieldTo: true, FieldCc: true, FieldBcc: true, FieldReplyTo: true,
	FieldIdempotencyKey: true, FieldRequestedAtMS: true,
}

// FromStream decodes the fields of one stream entry. An empty optional field
// counts as absent. Unknown fields are rejected: the field set is a fixed
// contract, and a misspelt optional field would otherwise vanish silently.
func FromStream(values map[string]string) (Command, error) {
	for k := range values {
		if !streamFields[k] && !streams.IsTraceField(k) {
			return Command{}, fieldErr(k, "unknown field")
		}
	}
	c := Command{
		Source:         values[FieldSource],
		PayloadMode:    values[FieldPayloadMode],
		TemplateID:     values[FieldTemplateID],
		Locale:         values[FieldLocale],
		Subject:        values[FieldSubject],
		TextBody:       values[FieldTextBody],
		HTMLBody:       values[FieldHTMLBody],
		ReplyTo:        values[FieldReplyTo],
		IdempotencyKey: values[FieldIdempotencyKey],
	}
	if raw, ok := values[FieldTemplateVariables]; ok && raw != "" {
		vars, err := decodeObject(raw)
		if err != nil {
			return Command{}, fieldErr(FieldTemplateVariables, "%v", err)
		}
		c.Variables = vars
	}
	var err error
	if c.To, err = decodeAddressList(FieldTo, values[FieldTo]); err != nil {
		return Command{}, err
	}
	if c.Cc, err = decodeAddressList(FieldCc, values[FieldCc]); err != nil {
		return Command{}, err
	}
	if c.Bcc, err = decodeAddressList(FieldBcc, values[FieldBcc]); err != nil {
		return Command{}, err
	}
	rawAt, ok := values[FieldRequestedAtMS]
	if !ok || rawAt == "" {
		return Command{}, fieldErr(FieldRequestedAtMS, "required")
	}
	at, perr := strconv.ParseInt(rawAt, 10, 64)
	if perr != nil {
		return Command{}, fieldErr(FieldRequestedAtMS, "not an integer of Unix milliseconds: %q", truncate(rawAt, 40))
	}
	c.RequestedAtMS = at
	return c, c.normalize(map[string]bool{
		FieldTemplateVariables: values[FieldTemplateVariables] != "",
	})
}

// JSON is the HTTP form of a command: the stream's fields with arrays and
// objects as JSON values instead of strings.
type JSON struct {
	Source            string          `json:"source"`
	PayloadMode       string          `json:"payload_mode"`
	TemplateID        string          `json:"template_id,omitempty"`
	Locale            string          `json:"locale,omitempty"`
	TemplateVariables json.RawMessage `json:"template_variables,omitempty"`
	Subject           string          `json:"subject,omitempty"`
	TextBody          string          `json:"text_body,omitempty"`
	HTMLBody          string          `json:"html_body,omitempty"`
	To                []string        `json:"to"`
	Cc                []string        `json:"cc,omitempty"`
	Bcc               []string        `json:"bcc,omitempty"`
	ReplyTo           string          `json:"reply_to,omitempty"`
	IdempotencyKey    string          `json:"idempotency_key"`
	RequestedAtMS     int64           `json:"requested_at_ms"`
}

// FromJSON strictly decodes one JSON command: unknown fields, trailing data
// and wrong types are errors.
func FromJSON(data []byte) (Command, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j JSON
	if err := dec.Decode(&j); err != nil {
		if errors.Is(err, io.EOF) {
			return Command{}, errors.New("request body is empty")
		}
		return Command{}, fmt.Errorf("malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Command{}, errors.New("malformed JSON body: trailing data after the object")
	}
	c := Command{
		Source:         j.Source,
		PayloadMode:    j.PayloadMode,
		TemplateID:     j.TemplateID,
		Locale:         j.Locale,
		Subject:        j.Subject,
		TextBody:       j.TextBody,
		HTMLBody:       j.HTMLBody,
		To:             trimAll(j.To),
		Cc:             trimAll(j.Cc),
		Bcc:            trimAll(j.Bcc),
		ReplyTo:        j.ReplyTo,
		IdempotencyKey: j.IdempotencyKey,
		RequestedAtMS:  j.RequestedAtMS,
	}
	hasVars := len(j.TemplateVariables) > 0 && string(j.TemplateVariables) != "null"
	if hasVars {
		vars, err := decodeObject(string(j.TemplateVariables))
		if err != nil {
			return Command{}, fieldErr("template_variables", "%v", err)
		}
		c.Variables = vars
	}
	if j.To == nil {
		return Command{}, fieldErr("to", "required")
	}
	return c, c.normalize(map[string]bool{FieldTemplateVariables: hasVars})
}

// normalize validates every field and brings the command to its canonical
// form (trimmed addresses, canonical locale). present tells which optional
// fields were given, where an empty value and an absent one differ.
func (c *Command) normalize(present map[string]bool) error {
	if c.Source == "" {
		return fieldErr(FieldSource, "required")
	}
	if !sourcePattern.MatchString(c.Source) {
		return fieldErr(FieldSource, "must match %s", sourcePattern)
	}
	switch c.PayloadMode {
	case ModeTemplate:
		if c.Subject != "" || c.TextBody != "" || c.HTMLBody != "" {
			return fieldErr(FieldPayloadMode, "template mode takes no subject, text_body or html_body")
		}
		if c.TemplateID == "" {
			return fieldErr(FieldTemplateID, "required in template mode")
		}
		if !templateIDPattern.MatchString(c.TemplateID) {
			return fieldErr(FieldTemplateID, "must match %s", templateIDPattern)
		}
		if c.Locale != "" {
			loc, err := CanonicalLocale(c.Locale)
			if err != nil {
				return fieldErr(FieldLocale, "%v", err)
			}
			c.Locale = loc
		}
		if c.Variables == nil {
			c.Variables = map[string]any{}
		}
		if hasNUL(c.Variables) {
			return fieldErr(FieldTemplateVariables, "contains a NUL character, which no text field can store")
		}
	case ModeRendered:
		if c.TemplateID != "" || c.Locale != "" || present[FieldTemplateVariables] {
			return fieldErr(FieldPayloadMode, "rendered mode takes no template_id, locale or template variables")
		}
		if strings.TrimSpace(c.Subject) == "" {
			return fieldErr(FieldSubject, "required in rendered mode")
		}
		if err := checkHeaderValue(c.Subject, MaxSubjectLen); err != nil {
			return fieldErr(FieldSubject, "%v", err)
		}
		if c.TextBody == "" && c.HTMLBody == "" {
			return fieldErr(FieldTextBody, "text_body or html_body is required in rendered mode")
		}
		if len(c.TextBody) > MaxBodyBytes || !utf8.ValidString(c.TextBody) {
			return fieldErr(FieldTextBody, "must be valid UTF-8 of at most %d bytes", MaxBodyBytes)
		}
		if len(c.HTMLBody) > MaxBodyBytes || !utf8.ValidString(c.HTMLBody) {
			return fieldErr(FieldHTMLBody, "must be valid UTF-8 of at most %d bytes", MaxBodyBytes)
		}
		if strings.ContainsRune(c.TextBody, 0) || strings.ContainsRune(c.HTMLBody, 0) {
			return fieldErr(FieldTextBody, "bodies must not contain NUL characters")
		}
	case "":
		return fieldErr(FieldPayloadMode, "required")
	default:
		return fieldErr(FieldPayloadMode, "must be %q or %q, got %q", ModeTemplate, ModeRendered, truncate(c.PayloadMode, 40))
	}
	if len(c.To) == 0 {
		return fieldErr(FieldTo, "must be a non-empty array of addresses")
	}
	if n := len(c.To) + len(c.Cc) + len(c.Bcc); n > MaxRecipients {
		return fieldErr(FieldTo, "%d recipients in to, cc and bcc together; at most %d", n, MaxRecipients)
	}
	for _, list := range []struct {
		field string
		addrs []string
	}{{FieldTo, c.To}, {FieldCc, c.Cc}, {FieldBcc, c.Bcc}} {
		for i, a := range list.addrs {
			if _, err := ParseAddress(a); err != nil {
				return fieldErr(list.field, "element %d: %v", i, err)
			}
		}
	}
	c.ReplyTo = trimBlank(c.ReplyTo)
	if c.ReplyTo != "" {
		if _, err := ParseAddress(c.ReplyTo); err != nil {
			return fieldErr(FieldReplyTo, "%v", err)
		}
	}
	if c.IdempotencyKey == "" {
		return fieldErr(FieldIdempotencyKey, "required")
	}
	if len(c.IdempotencyKey) > MaxIdempotencyKey || !utf8.ValidString(c.IdempotencyKey) || strings.IndexFunc(c.IdempotencyKey, unicode.IsControl) >= 0 {
		return fieldErr(FieldIdempotencyKey, "must be printable UTF-8 of at most %d bytes", MaxIdempotencyKey)
	}
	if c.RequestedAtMS <= 0 {
		return fieldErr(FieldRequestedAtMS, "must be a positive Unix millisecond time")
	}
	return nil
}

// CanonicalLocale parses a BCP 47 tag and returns its canonical form
// ("fr-ca" → "fr-CA").
func CanonicalLocale(s string) (string, error) {
	if len(s) > MaxLocaleLen {
		return "", fmt.Errorf("longer than %d bytes", MaxLocaleLen)
	}
	tag, err := language.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a BCP 47 language tag: %q", truncate(s, 40))
	}
	return tag.String(), nil
}

// ParseAddress checks one address as net/mail does, refusing control
// characters first: net/mail tolerates folding whitespace, and a CR or LF
// that reached a header would let a producer inject headers.
func ParseAddress(s string) (*mail.Address, error) {
	if s == "" {
		return nil, errors.New("empty address")
	}
	if err := checkHeaderValue(s, MaxAddressLen); err != nil {
		return nil, err
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q: %v", truncate(s, 80), err)
	}
	return a, nil
}

// RecipientKey is the form an address is indexed and searched by: the
// address part, lower-cased.
func RecipientKey(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return strings.ToLower(a.Address)
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// CheckHeaderValue rejects what must never reach a mail header: CR, LF and
// other control characters, invalid UTF-8, and values longer than max bytes.
func CheckHeaderValue(s string, max int) error { return checkHeaderValue(s, max) }

func checkHeaderValue(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return fmt.Errorf("contains control character %U at byte %d (CR and LF are never allowed in a header)", []rune(s[i:])[0], i)
	}
	return nil
}

func decodeAddressList(field, raw string) ([]string, error) {
	if raw == "" {
		if field == FieldTo {
			return nil, fieldErr(field, "required")
		}
		return nil, nil
	}
	if len(raw) > maxAddressListBytes {
		return nil, fieldErr(field, "longer than %d bytes", maxAddressListBytes)
	}
	var list []string
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		return nil, fieldErr(field, "must be a JSON array of strings: %v", err)
	}
	if list == nil {
		return nil, fieldErr(field, "must be a JSON array of strings, got null")
	}
	return trimAll(list), nil
}

func decodeObject(raw string) (map[string]any, error) {
	if len(raw) > MaxVariablesBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxVariablesBytes)
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("must be a JSON object: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("must be one JSON object: trailing data")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be a JSON object")
	}
	return obj, nil
}

// hasNUL reports whether any key or string in v holds a NUL character:
// PostgreSQL's text and jsonb cannot store one.
func hasNUL(v any) bool {
	switch t := v.(type) {
	case string:
		return strings.ContainsRune(t, 0)
	case map[string]any:
		for k, e := range t {
			if strings.ContainsRune(k, 0) || hasNUL(e) {
				return true
			}
		}
	case []any:
		for _, e := range t {
			if hasNUL(e) {
				return true
			}
		}
	}
	return false
}

// trimBlank trims spaces and tabs only: a CR or LF is never tidied away
// but refused, since it can only come from a producer bug or an attack.
func trimBlank(s string) string { return strings.Trim(s, " \t") }

func trimAll(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = trimBlank(s)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// canonical is the fingerprinted form of a command. requested_at_ms is left
// out on purpose: it records when the caller asked, and a caller retrying
// the same request may stamp the retry with a later time.
type canonical struct {
	Source      string         `json:"source"`
	PayloadMode string         `json:"payload_mode"`
	TemplateID  string         `json:"template_id"`
	Locale      string         `json:"locale"`
	Variables   map[string]any `json:"template_variables"`
	Subject     string         `json:"subject"`
	TextBody    string         `json:"text_body"`
	HTMLBody    string         `json:"html_body"`
	To          []string       `json:"to"`
	Cc          []string       `json:"cc"`
	Bcc         []string       `json:"bcc"`
	ReplyTo     string         `json:"reply_to"`
	Key         string         `json:"idempotency_key"`
}

// Hash is a hex SHA-256 of the command's canonical JSON (object keys
// sorted, numbers as written). Two requests with the same key and the same
// hash are the same request.
func (c Command) Hash() string {
	b, err := json.Marshal(canonical{
		Source: c.Source, PayloadMode: c.PayloadMode, TemplateID: c.TemplateID, Locale: c.Locale,
		Variables: c.Variables, Subject: c.Subject, TextBody: c.TextBody, HTMLBody: c.HTMLBody,
		To: nonNil(c.To), Cc: nonNil(c.Cc), Bcc: nonNil(c.Bcc), ReplyTo: c.ReplyTo, Key: c.IdempotencyKey,
	})
	if err != nil {
		// Variables come from a JSON decoder and always marshal.
		panic(fmt.Sprintf("hash command: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// StreamValues is the command as stream fields, the inverse of FromStream.
// Producers (the load generator, tests) use it.
func (c Command) StreamValues() map[string]string {
	v := map[string]string{
		FieldSource:         c.Source,
		FieldPayloadMode:    c.PayloadMode,
		FieldIdempotencyKey: c.IdempotencyKey,
		FieldRequestedAtMS:  strconv.FormatInt(c.RequestedAtMS, 10),
		FieldTo:             mustJSON(nonNil(c.To)),
	}
	set := func(k, s string) {
		if s != "" {
			v[k] = s
		}
	}
	set(FieldTemplateID, c.TemplateID)
	set(FieldLocale, c.Locale)
	set(FieldSubject, c.Subject)
	set(FieldTextBody, c.TextBody)
	set(FieldHTMLBody, c.HTMLBody)
	set(FieldReplyTo, c.ReplyTo)
	if c.PayloadMode == ModeTemplate && c.Variables != nil {
		v[FieldTemplateVariables] = mustJSON(c.Variables)
	}
	if len(c.Cc) > 0 {
		v[FieldCc] = mustJSON(c.Cc)
	}
	if len(c.Bcc) > 0 {
		v[FieldBcc] = mustJSON(c.Bcc)
	}
	return v
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return string(b)
}
