// Package jobspec decodes and validates the entries of the start and stop job
// streams (CONTRACTS §3). It is pure logic: every rule that turns a start job
// into a `start_config_invalid` failure lives here, and each error names the
// field it is about, because that message goes to an operator verbatim.
package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"

	"galaxy/platform/untrusted"
)

// Defaults of the optional config_json keys.
const (
	DefaultPort       = 8080
	DefaultHealthPath = "/healthz"
)

// Limits that keep one entry from carrying an unbounded payload into Docker
// and into the job record (docs/contracts.md, "Limits").
const (
	MaxConfigJSONBytes = 64 << 10
	MaxJobIDBytes      = 256
	// MaxImageRefBytes is well above the longest valid reference (a
	// 255-byte name, a 128-byte tag and a digest); a longer value is
	// refused without being parsed.
	MaxImageRefBytes = 1024
	// ReservedLabelPrefix marks the ownership labels the manager sets itself;
	// a job may not set or override them.
	ReservedLabelPrefix = "galaxy.rtmanager."
)

// GameIDPattern is the contract's rule for game_id. It also makes the
// container name galaxy-game-<game_id> and the state directory name safe.
var GameIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// StartJob is one decoded entry of runtime:start_jobs. The raw fields are
// kept even when validation fails, so a failed job result can still name the
// game and image it was about.
type StartJob struct {
	JobID         string
	GameID        string
	ImageRef      string
	RequestedAtMS int64
	Config        Config
	// Image is the parsed, normalized image reference; nil when invalid.
	Image reference.Named
}

// Config is config_json with its defaults applied.
type Config struct {
	Env        map[string]string
	Cmd        []string
	Labels     map[string]string
	MemoryMB   int64
	CPUs       float64
	Port       int
	HealthPath string
}

// StopJob is one decoded entry of runtime:stop_jobs.
type StopJob struct {
	JobID         string
	GameID        string
	RequestedAtMS int64
	Reason        string
}

// FieldError is one invalid field. Field is the dotted path of the field
// (config_json.memory_mb) and Reason says what is wrong with it.
type FieldError struct {
	Field  string
	Reason string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Reason }

// InvalidError lists every invalid field of one job, in a stable order.
type InvalidError struct {
	Fields []FieldError
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return strings.Join(parts, "; ")
}

func (e *InvalidError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: printable(field), Reason: printable(fmt.Sprintf(format, args...))})
}

// What a job's result and admin intent show of its own values (see Show*).
// A failed job's result, intent and mail must always reach the operators:
// the intent's payload_json has a limit at Notification (64 KiB), so what
// it carries of the job is bounded here, well below it.
const (
	// ShownGameIDBytes and ShownImageRefBytes are at least the longest valid
	// value, so a valid game ID or image reference is always shown exactly.
	ShownGameIDBytes   = 256
	ShownImageRefBytes = MaxImageRefBytes
	// MaxErrorMessageBytes bounds error_message (jobspec's own messages and
	// the Docker daemon's alike).
	MaxErrorMessageBytes = 4096
)

// ShowGameID is game_id as a job's result and intent carry it: the value
// itself when it is printable and short enough (every valid game ID is),
// else quoted, with escapes for what is not printable, and cut to
// ShownGameIDBytes ("game\x01x", "aaaa"… (40969 bytes)). Mail subjects
// and bodies show it as it is, so it must never break a header or hide a
// character.
func ShowGameID(s string) string { return untrusted.Show(Recordable(s), ShownGameIDBytes) }

// ShowImageRef is image_ref as a job's result and intent carry it, the way
// ShowGameID is game_id.
func ShowImageRef(s string) string { return untrusted.Show(Recordable(s), ShownImageRefBytes) }

// ShowMessage is error_message as a job's result and intent carry it: cut
// to MaxErrorMessageBytes. The values it names are quoted where it was
// written (jobspec's messages quote every input).
func ShowMessage(s string) string { return untrusted.Cut(Recordable(s), MaxErrorMessageBytes) }

// Recordable is an invalid job's value as its result, its intent and the
// job record carry it: PostgreSQL text refuses NUL and invalid UTF-8, so
// both become U+FFFD. Valid jobs never need it.
func Recordable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// printable escapes, Go-style, what the message must not carry: inputs may
// be any bytes, and the message goes into a PostgreSQL text column (which
// refuses NUL), a stream entry and an operator's e-mail.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func (e *InvalidError) orNil() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// AsInvalid returns the InvalidError inside err, if any.
func AsInvalid(err error) (*InvalidError, bool) {
	var inv *InvalidError
	ok := errors.As(err, &inv)
	return inv, ok
}

// DecodeStart decodes a start job entry. entryID is the stream entry ID,
// used as the job ID when the entry has none. The returned job is always
// filled as far as the input allows; the error, when not nil, is an
// *InvalidError naming every invalid field.
func DecodeStart(entryID string, values map[string]string) (StartJob, error) {
	inv := &InvalidError{}
	job := StartJob{
		JobID:    jobID(entryID, values, inv),
		GameID:   values["game_id"],
		ImageRef: values["image_ref"],
	}
	checkGameID(job.GameID, inv)
	switch {
	case strings.TrimSpace(job.ImageRef) == "":
		inv.add("image_ref", "is required")
	case len(job.ImageRef) > MaxImageRefBytes:
		inv.add("image_ref", "longer than %d bytes: %s", MaxImageRefBytes, untrusted.Quote(job.ImageRef, 200))
	default:
		named, err := reference.ParseNormalizedNamed(job.ImageRef)
		if err != nil {
			// The parser's error may quote the whole value again.
			inv.add("image_ref", "%s is not a Docker image reference: %s", untrusted.Quote(job.ImageRef, 200), untrusted.Cut(err.Error(), 200))
		} else {
			job.Image = reference.TagNameOnly(named)
		}
	}
	job.RequestedAtMS = requestedAt(values, inv)
	job.Config = decodeConfig(values["config_json"], inv)
	return job, inv.orNil()
}

// DecodeStop decodes a stop job entry the same way.
func DecodeStop(entryID string, values map[string]string) (StopJob, error) {
	inv := &InvalidError{}
	job := StopJob{
		JobID:  jobID(entryID, values, inv),
		GameID: values["game_id"],
		Reason: values["reason"],
	}
	checkGameID(job.GameID, inv)
	job.RequestedAtMS = requestedAt(values, inv)
	return job, inv.orNil()
}

// ImageName is the reference handed to Docker: the familiar form with the
// default tag made explicit (galaxy/game:latest, 127.0.0.1:5000/game:1).
func (j StartJob) ImageName() string {
	if j.Image == nil {
		return j.ImageRef
	}
	return reference.FamiliarString(j.Image)
}

func jobID(entryID string, values map[string]string, inv *InvalidError) string {
	id, ok := values["job_id"]
	switch {
	case !ok:
		return entryID
	case id == "":
		// An empty optional field means "not given".
		return entryID
	case len(id) > MaxJobIDBytes:
		inv.add("job_id", "longer than %d bytes", MaxJobIDBytes)
		return entryID
	case !utf8.ValidString(id) || strings.IndexFunc(id, unicode.IsControl) >= 0:
		inv.add("job_id", "must be printable UTF-8")
		return entryID
	}
	return id
}

func checkGameID(id string, inv *InvalidError) {
	switch {
	case id == "":
		inv.add("game_id", "is required")
	case !GameIDPattern.MatchString(id):
		inv.add("game_id", "%s does not match %s", untrusted.Quote(id, 160), GameIDPattern.String())
	}
}

func requestedAt(values map[string]string, inv *InvalidError) int64 {
	raw, ok := values["requested_at_ms"]
	if !ok || raw == "" {
		inv.add("requested_at_ms", "is required")
		return 0
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || ms <= 0 {
		inv.add("requested_at_ms", "must be Unix milliseconds as a positive integer, got %q", truncate(raw, 40))
		return 0
	}
	return ms
}

// configKeys are the keys config_json may carry, in the order errors about
// them are reported.
var configKeys = []string{"env", "cmd", "labels", "memory_mb", "cpus", "port", "health_path"}

func decodeConfig(raw string, inv *InvalidError) Config {
	cfg := Config{Port: DefaultPort, HealthPath: DefaultHealthPath}
	if raw == "" {
		return cfg
	}
	if len(raw) > MaxConfigJSONBytes {
		inv.add("config_json", "larger than %d bytes", MaxConfigJSONBytes)
		return cfg
	}
	var obj map[string]json.RawMessage
	if kind := jsonKind(raw); kind != "object" {
		inv.add("config_json", "must be a JSON object, got %s", kind)
		return cfg
	}
	if err := strictUnmarshal([]byte(raw), &obj); err != nil {
		inv.add("config_json", "is not valid JSON: %v", err)
		return cfg
	}
	var unknown []string
	for k := range obj {
		if !contains(configKeys, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		inv.add("config_json."+truncate(k, 64), "unknown key (allowed: %s)", strings.Join(configKeys, ", "))
	}
	for _, k := range configKeys {
		v, ok := obj[k]
		if !ok {
			continue
		}
		field := "config_json." + k
		switch k {
		case "env":
			cfg.Env = stringMap(field, v, inv, checkEnvKey)
		case "labels":
			cfg.Labels = stringMap(field, v, inv, checkLabelKey)
		case "cmd":
			cfg.Cmd = stringList(field, v, inv)
		case "memory_mb":
			n, ok := integer(v)
			if !ok || n <= 0 {
				inv.add(field, "must be an integer greater than 0, got %s", truncate(string(v), 40))
				continue
			}
			// Docker takes bytes in an int64; keep the product in range.
			if n > math.MaxInt64>>20 {
				inv.add(field, "is too large")
				continue
			}
			cfg.MemoryMB = n
		case "cpus":
			f, ok := number(v)
			if !ok || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				inv.add(field, "must be a number greater than 0, got %s", truncate(string(v), 40))
				continue
			}
			if f > 1e6 {
				inv.add(field, "is too large")
				continue
			}
			cfg.CPUs = f
		case "port":
			n, ok := integer(v)
			if !ok || n < 1 || n > 65535 {
				inv.add(field, "must be an integer from 1 to 65535, got %s", truncate(string(v), 40))
				continue
			}
			cfg.Port = int(n)
		case "health_path":
			s, ok := str(v)
			if !ok {
				inv.add(field, "must be a string, got %s", truncate(string(v), 40))
				continue
			}
			if !strings.HasPrefix(s, "/") || strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 || strings.Contains(s, "#") {
				inv.add(field, "must be an absolute URL path starting with / without spaces, got %q", truncate(s, 64))
				continue
			}
			cfg.HealthPath = s
		}
	}
	return cfg
}

// jsonKind names the kind of JSON value raw starts with, for messages.
func jsonKind(raw string) string {
	t := strings.TrimLeft(raw, " \t\r\n")
	if t == "" {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number or invalid JSON"
}

func strictUnmarshal(data []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the object")
	}
	return nil
}

func stringMap(field string, v json.RawMessage, inv *InvalidError, checkKey func(string) string) map[string]string {
	var raw map[string]json.RawMessage
	if strictUnmarshal(v, &raw) != nil || raw == nil {
		inv.add(field, "must be an object of strings")
		return nil
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]string, len(raw))
	for _, k := range keys {
		s, ok := str(raw[k])
		if !ok {
			inv.add(field+"."+truncate(k, 64), "must be a string, got %s", truncate(string(raw[k]), 40))
			continue
		}
		if reason := checkKey(k); reason != "" {
			inv.add(field, "key %q %s", truncate(k, 64), reason)
			continue
		}
		if strings.Contains(s, "\x00") {
			inv.add(field+"."+truncate(k, 64), "contains NUL, which no process environment or label can carry")
			continue
		}
		out[k] = s
	}
	return out
}

func checkEnvKey(k string) string {
	switch {
	case k == "":
		return "is empty"
	case strings.ContainsAny(k, "=\x00"):
		return "contains = or NUL"
	}
	return ""
}

func checkLabelKey(k string) string {
	switch {
	case k == "":
		return "is empty"
	case strings.Contains(k, "\x00"):
		return "contains NUL"
	case strings.HasPrefix(k, ReservedLabelPrefix):
		return "uses the reserved prefix " + ReservedLabelPrefix
	}
	return ""
}

func stringList(field string, v json.RawMessage, inv *InvalidError) []string {
	var raw []json.RawMessage
	if strictUnmarshal(v, &raw) != nil || raw == nil {
		inv.add(field, "must be an array of strings")
		return nil
	}
	out := make([]string, 0, len(raw))
	for i, item := range raw {
		s, ok := str(item)
		if !ok {
			inv.add(fmt.Sprintf("%s[%d]", field, i), "must be a string, got %s", truncate(string(item), 40))
			continue
		}
		if strings.Contains(s, "\x00") {
			inv.add(fmt.Sprintf("%s[%d]", field, i), "contains NUL, which no process argument can carry")
			continue
		}
		out = append(out, s)
	}
	return out
}

// str accepts a JSON string only; null is not a string here.
func str(v json.RawMessage) (string, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(t, &s) != nil {
		return "", false
	}
	return s, true
}

// integer accepts a JSON number without fraction or exponent.
func integer(v json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(v))
	if s == "" || strings.ContainsAny(s, ".eE\"") {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func number(v json.RawMessage) (float64, bool) {
	s := strings.TrimSpace(string(v))
	if s == "" || s[0] == '"' {
		return 0, false
	}
	var n json.Number
	if json.Unmarshal(v, &n) != nil {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// truncate keeps operator messages readable when a field is huge.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
