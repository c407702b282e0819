// Package render turns a template-mode command into a message: it finds the
// template for the command's locale, executes it with the command's
// variables and returns subject, text and HTML.
//
// Templates live in `<dir>/<template_id>/<locale>/{subject,text,html}.tmpl`
// (html optional). They are parsed once and kept in memory: rendering is on
// the path of every command, and parsing per command would cost more than
// the rest of the work. A template ID that is not in memory is looked for on
// disk again (at most once per RescanInterval), so a template added while the
// service runs is picked up without a restart.
//
// Subject and text use text/template, HTML uses html/template (contextual
// escaping of every variable). A subject shows each string variable as
// untrusted.Show does — as it is when printable and short, else quoted and
// cut — so no producer's value can break the header or stretch it past its
// limit, and a delivery never fails for it. Both run with missingkey=error: a variable the
// template names but the command lacks fails the render instead of printing
// "<no value>" to a recipient.
package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	texttemplate "text/template"
	"time"

	"golang.org/x/text/language"

	"galaxy/mail/command"
	"galaxy/platform/untrusted"
)

// Error codes recorded on a delivery whose render failed.
const (
	CodeNotFound     = "template_not_found"
	CodeRenderFailed = "template_render_failed"
)

// Error is a render failure with the code the delivery records.
type Error struct {
	Code string
	Err  error
}

func (e *Error) Error() string { return e.Code + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// SubjectValueBytes bounds what one variable shows of itself in a subject.
const SubjectValueBytes = 256

// RescanInterval bounds how often a missing template ID is looked for on disk.
const RescanInterval = 5 * time.Second

// maxScanned bounds the memory of missing template IDs.
const maxScanned = 10000

// Message is a rendered message.
type Message struct {
	Subject string
	Text    string
	HTML    string
	// Locale is the locale of the template used, after fallback.
	Locale string
}

// Catalog holds the parsed templates of one directory.
type Catalog struct {
	dir           string
	defaultLocale string

	mu      sync.RWMutex
	byID    map[string]map[string]*set // template ID → canonical locale → set
	scanned map[string]time.Time       // template IDs last looked for on disk
}

type set struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template // nil when the locale has no html.tmpl
}

// Load parses every template under dir. A locale directory whose name is not
// a BCP 47 tag, or whose templates do not parse, is an error: a broken
// template should stop a deployment, not fail deliveries one by one.
func Load(dir, defaultLocale string) (*Catalog, error) {
	loc, err := language.Parse(defaultLocale)
	if err != nil {
		return nil, fmt.Errorf("default locale %q: not a BCP 47 tag", defaultLocale)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("template directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("template directory %s: not a directory", dir)
	}
	c := &Catalog{dir: dir, defaultLocale: loc.String(), byID: map[string]map[string]*set{}, scanned: map[string]time.Time{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read template directory %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sets, err := loadTemplate(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if len(sets) > 0 {
			c.byID[e.Name()] = sets
		}
	}
	return c, nil
}

// DefaultLocale is the last locale of every fallback chain.
func (c *Catalog) DefaultLocale() string { return c.defaultLocale }

// TemplateIDs lists the loaded template IDs with their locales.
func (c *Catalog) TemplateIDs() map[string][]string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[string][]string, len(c.byID))
	for id, sets := range c.byID {
		for loc := range sets {
			out[id] = append(out[id], loc)
		}
	}
	return out
}

func loadTemplate(dir string) (map[string]*set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", dir, err)
	}
	sets := map[string]*set{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		tag, err := language.Parse(e.Name())
		if err != nil {
			return nil, fmt.Errorf("template %s: locale directory %q is not a BCP 47 tag", dir, e.Name())
		}
		s, err := loadSet(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if _, dup := sets[tag.String()]; dup {
			return nil, fmt.Errorf("template %s: two directories for locale %s", dir, tag)
		}
		sets[tag.String()] = s
	}
	return sets, nil
}

func loadSet(dir string) (*set, error) {
	read := func(name string, required bool) (string, bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && !required {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("template %s: %w", dir, err)
		}
		return string(b), true, nil
	}
	subject, _, err := read("subject.tmpl", true)
	if err != nil {
		return nil, err
	}
	text, _, err := read("text.tmpl", true)
	if err != nil {
		return nil, err
	}
	html, hasHTML, err := read("html.tmpl", false)
	if err != nil {
		return nil, err
	}
	s := &set{}
	if s.subject, err = texttemplate.New("subject").Option("missingkey=error").Funcs(textFuncs).Parse(subject); err != nil {
		return nil, fmt.Errorf("template %s: parse subject.tmpl: %w", dir, err)
	}
	if s.text, err = texttemplate.New("text").Option("missingkey=error").Funcs(textFuncs).Parse(text); err != nil {
		return nil, fmt.Errorf("template %s: parse text.tmpl: %w", dir, err)
	}
	if hasHTML {
		if s.html, err = htmltemplate.New("html").Option("missingkey=error").Funcs(htmlFuncs).Parse(html); err != nil {
			return nil, fmt.Errorf("template %s: parse html.tmpl: %w", dir, err)
		}
	}
	return s, nil
}

// Candidates is the locale fallback chain of a requested locale: the exact
// tag, then each shorter prefix (RFC 4647 lookup: fr-CA → fr), then the
// default locale.
func Candidates(locale, defaultLocale string) []string {
	var out []string
	add := func(l string) {
		for _, o := range out {
			if o == l {
				return
			}
		}
		out = append(out, l)
	}
	if locale != "" {
		if tag, err := language.Parse(locale); err == nil {
			full := tag.String()
			add(full)
			// Extensions and private use (from the first singleton subtag
			// on) are dropped before shortening: "de-u-co-phonebk" → "de".
			parts := strings.Split(full, "-")
			for i, p := range parts {
				if i > 0 && len(p) == 1 {
					parts = parts[:i]
					break
				}
			}
			for n := len(parts); n > 0; n-- {
				add(strings.Join(parts[:n], "-"))
			}
		}
	}
	add(defaultLocale)
	return out
}

// Render renders templateID for locale with vars.
func (c *Catalog) Render(templateID, locale string, vars map[string]any) (Message, error) {
	sets := c.lookup(templateID)
	if sets == nil {
		return Message{}, &Error{CodeNotFound, fmt.Errorf("no template %q in %s", templateID, c.dir)}
	}
	chain := Candidates(locale, c.defaultLocale)
	var s *set
	var used string
	for _, l := range chain {
		if s = sets[l]; s != nil {
			used = l
			break
		}
	}
	if s == nil {
		return Message{}, &Error{CodeNotFound, fmt.Errorf("template %q has no locale among %s", templateID, strings.Join(chain, ", "))}
	}
	if vars == nil {
		vars = map[string]any{}
	}
	var buf bytes.Buffer
	if err := s.subject.Execute(&buf, subjectVars(vars)); err != nil {
		return Message{}, &Error{CodeRenderFailed, fmt.Errorf("%s/%s/subject.tmpl: %w", templateID, used, err)}
	}
	msg := Message{Subject: untrusted.Cut(Subject(buf.String()), command.MaxSubjectLen), Locale: used}
	buf.Reset()
	if err := s.text.Execute(&buf, vars); err != nil {
		return Message{}, &Error{CodeRenderFailed, fmt.Errorf("%s/%s/text.tmpl: %w", templateID, used, err)}
	}
	msg.Text = buf.String()
	if s.html != nil {
		buf.Reset()
		if err := s.html.Execute(&buf, vars); err != nil {
			return Message{}, &Error{CodeRenderFailed, fmt.Errorf("%s/%s/html.tmpl: %w", templateID, used, err)}
		}
		msg.HTML = buf.String()
	}
	if msg.Subject == "" {
		return Message{}, &Error{CodeRenderFailed, fmt.Errorf("%s/%s/subject.tmpl: rendered an empty subject", templateID, used)}
	}
	return msg, nil
}

// subjectVars is vars as a subject shows them: every string variable
// through untrusted.Show (a control character, an invisible separator such
// as U+2028 or a value of tens of KiB comes out quoted and cut), the
// others as they are.
func subjectVars(vars map[string]any) map[string]any {
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		if s, ok := v.(string); ok {
			v = untrusted.Show(s, SubjectValueBytes)
		}
		out[k] = v
	}
	return out
}

// Subject makes a rendered subject fit for a header: every CR and LF becomes
// a space (a variable must never open a new header line), runs of spaces
// collapse and the ends are trimmed.
func Subject(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func (c *Catalog) lookup(templateID string) map[string]*set {
	c.mu.RLock()
	sets := c.byID[templateID]
	last, scanned := c.scanned[templateID]
	c.mu.RUnlock()
	if sets != nil || (scanned && time.Since(last) < RescanInterval) {
		return sets
	}
	// Template IDs are validated by the command package and cannot name a
	// path outside dir; checking again keeps this package safe on its own.
	if templateID == "" || strings.ContainsAny(templateID, `/\`) || strings.HasPrefix(templateID, ".") {
		return nil
	}
	loaded, err := loadTemplate(filepath.Join(c.dir, templateID))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.scanned) >= maxScanned {
		// Template IDs come from producers; do not let unknown ones pile up.
		clear(c.scanned)
	}
	c.scanned[templateID] = time.Now()
	if err != nil || len(loaded) == 0 {
		return nil
	}
	c.byID[templateID] = loaded
	return loaded
}

// Template helpers. Variables arrive as JSON values: numbers are
// json.Number, so they print exactly as the producer wrote them.
var textFuncs = texttemplate.FuncMap{
	"msTime": msTime,
}

var htmlFuncs = htmltemplate.FuncMap{
	"msTime": msTime,
}

// msTime formats Unix milliseconds as an RFC 3339 UTC time; a value that is
// not a number is printed as it is, so an odd producer value still shows.
func msTime(v any) string {
	var ms float64
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return t.String()
		}
		ms = f
	case float64:
		ms = t
	case int64:
		ms = float64(t)
	case int:
		ms = float64(t)
	case string:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return t
		}
		ms = f
	default:
		return fmt.Sprint(v)
	}
	if math.IsNaN(ms) || math.IsInf(ms, 0) || math.Abs(ms) > 1e15 {
		return fmt.Sprint(v)
	}
	return time.UnixMilli(int64(ms)).UTC().Format(time.RFC3339)
}
