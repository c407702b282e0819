package render

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func shipped(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load(filepath.Join("..", "templates"), "en")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func operatorVars() map[string]any {
	return map[string]any{
		"game_id":         "game-7",
		"image_ref":       "registry.example/game:1.2",
		"error_code":      "x",
		"error_message":   "config_json.port: must be 1-65535",
		"attempted_at_ms": json.Number("1700000000123"),
	}
}

// TestShippedTemplates renders every shipped template in every locale with
// the variables its producer sends, and checks the operator templates say
// what failed and what to check.
func TestShippedTemplates(t *testing.T) {
	c := shipped(t)
	ids := c.TemplateIDs()
	for _, id := range []string{"runtime.image_pull_failed", "runtime.container_start_failed", "runtime.start_config_invalid", "lobby.game_starting"} {
		locs := ids[id]
		slices.Sort(locs)
		if !slices.Equal(locs, []string{"en", "fr"}) {
			t.Errorf("%s locales %v, want en and fr", id, locs)
		}
		for _, loc := range []string{"en", "fr"} {
			vars := operatorVars()
			if strings.HasPrefix(id, "lobby.") {
				vars = map[string]any{"user_display_name": "Ada", "game_id": "game-7"}
			}
			m, err := c.Render(id, loc, vars)
			if err != nil {
				t.Fatalf("%s/%s: %v", id, loc, err)
			}
			if m.Locale != loc || m.Subject == "" || m.Text == "" || m.HTML == "" || strings.ContainsAny(m.Subject, "\r\n") {
				t.Fatalf("%s/%s: %+v", id, loc, m)
			}
			for _, want := range []string{"game-7"} {
				if !strings.Contains(m.Subject, want) || !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
					t.Errorf("%s/%s lacks %q", id, loc, want)
				}
			}
			if strings.HasPrefix(id, "runtime.") {
				for _, want := range []string{"registry.example/game:1.2", "config_json.port: must be 1-65535", "2023-11-14T22:13:20Z"} {
					if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
						t.Errorf("%s/%s lacks %q", id, loc, want)
					}
				}
				check := map[string]string{"en": "What to check", "fr": "À vérifier"}[loc]
				if !strings.Contains(m.Text, check) {
					t.Errorf("%s/%s does not say what to check", id, loc)
				}
			}
		}
	}
	// Optional variables of the user template appear when given.
	m, err := c.Render("lobby.game_starting", "en", map[string]any{
		"user_display_name": "Ada", "game_id": "g", "join_url": "https://galaxy.example/join?g=1&x=<y>",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.HTML, `href="https://galaxy.example/join?g=1&amp;x=%3cy%3e"`) {
		t.Errorf("join link not escaped for an attribute:\n%s", m.HTML)
	}
}

func TestCandidates(t *testing.T) {
	for in, want := range map[string][]string{
		"fr-CA":           {"fr-CA", "fr", "en"},
		"fr-ca":           {"fr-CA", "fr", "en"},
		"en":              {"en"},
		"":                {"en"},
		"zh-Hant-TW":      {"zh-Hant-TW", "zh-Hant", "zh", "en"},
		"de-u-co-phonebk": {"de-u-co-phonebk", "de", "en"},
	} {
		if got := Candidates(in, "en"); !slices.Equal(got, want) {
			t.Errorf("Candidates(%q) = %v, want %v", in, got, want)
		}
	}
}

func writeTemplate(t *testing.T, dir, id, loc string, files map[string]string) {
	t.Helper()
	d := filepath.Join(dir, id, loc)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFallbackAndFailures(t *testing.T) {
	dir := t.TempDir()
	writeTemplate(t, dir, "greet", "en", map[string]string{"subject.tmpl": "Hello {{.name}}\n", "text.tmpl": "Hi {{.name}}"})
	writeTemplate(t, dir, "greet", "pt-BR", map[string]string{"subject.tmpl": "Olá {{.name}}", "text.tmpl": "Oi", "html.tmpl": "<p>{{.name}}</p>"})
	writeTemplate(t, dir, "greet", "pt", map[string]string{"subject.tmpl": "Olá (pt)", "text.tmpl": "Oi"})
	c, err := Load(dir, "en")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]any{"name": "<b>Zoë</b>\r\nBcc: x@example.com"}
	for loc, want := range map[string]string{"pt-BR": "pt-BR", "pt-PT": "pt", "pt": "pt", "de": "en", "": "en"} {
		m, err := c.Render("greet", loc, vars)
		if err != nil || m.Locale != want {
			t.Errorf("%q: locale %q err %v, want %q", loc, m.Locale, err, want)
		}
	}
	m, _ := c.Render("greet", "pt-BR", vars)
	// CR and LF in a variable are quoted, never a new header line.
	if m.Subject != `Olá "<b>Zoë</b>\r\nBcc: x@example.com"` {
		t.Errorf("subject %q", m.Subject)
	}
	if m.HTML != "<p>&lt;b&gt;Zoë&lt;/b&gt;\r\nBcc: x@example.com</p>" {
		t.Errorf("html %q", m.HTML)
	}
	var re *Error
	if _, err := c.Render("greet", "en", map[string]any{}); !errors.As(err, &re) || re.Code != CodeRenderFailed || !strings.Contains(err.Error(), "name") {
		t.Errorf("missing variable: %v", err)
	}
	if _, err := c.Render("nope", "en", vars); !errors.As(err, &re) || re.Code != CodeNotFound {
		t.Errorf("missing template: %v", err)
	}
	// A template with no default-locale variant and no match is not found.
	writeTemplate(t, dir, "only-fr", "fr", map[string]string{"subject.tmpl": "s", "text.tmpl": "t"})
	c2, err := Load(dir, "en")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Render("only-fr", "de", nil); !errors.As(err, &re) || re.Code != CodeNotFound {
		t.Errorf("no locale: %v", err)
	}
	// A template added after Load is found (looked for on disk on a miss).
	writeTemplate(t, dir, "late", "en", map[string]string{"subject.tmpl": "late", "text.tmpl": "t"})
	if _, err := c.Render("late", "en", nil); err != nil {
		t.Errorf("late template: %v", err)
	}
}

func TestLoadRefusesBrokenTemplates(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"parse error":  {"subject.tmpl": "{{.x", "text.tmpl": "t"},
		"no text":      {"subject.tmpl": "s"},
		"html parse":   {"subject.tmpl": "s", "text.tmpl": "t", "html.tmpl": "{{end}}"},
		"unknown func": {"subject.tmpl": "{{nope .x}}", "text.tmpl": "t"},
	} {
		dir := t.TempDir()
		writeTemplate(t, dir, "t", "en", files)
		if _, err := Load(dir, "en"); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	dir := t.TempDir()
	writeTemplate(t, dir, "t", "not a locale", map[string]string{"subject.tmpl": "s", "text.tmpl": "t"})
	if _, err := Load(dir, "en"); err == nil {
		t.Error("bad locale directory: loaded")
	}
	if _, err := Load(filepath.Join(dir, "missing"), "en"); err == nil {
		t.Error("missing directory: loaded")
	}
}

func TestSubject(t *testing.T) {
	if got := Subject("  a\r\nb\n\tc  \n"); got != "a b c" {
		t.Errorf("Subject = %q", got)
	}
}

func TestSubjectQuotesHostileVariables(t *testing.T) {
	c := shipped(t)
	for char, shown := range map[string]string{"\x01": `\x01`, "\x1b": `\x1b`, "\x7f": `\x7f`, "\u2028": `\u2028`, "\t": `\t`} {
		vars := operatorVars()
		vars["game_id"] = "game" + char + "7"
		m, err := c.Render("runtime.start_config_invalid", "en", vars)
		if err != nil {
			t.Fatalf("%q: %v", char, err)
		}
		if want := `[Galaxy] Game "game` + shown + `7": start configuration failed (x)`; m.Subject != want {
			t.Errorf("%q: subject %q, want %q", char, m.Subject, want)
		}
		// The bodies show the variable as the producer sent it.
		if !strings.Contains(m.Text, "Game: game"+char+"7\n") {
			t.Errorf("%q: text body lost the variable", char)
		}
	}
}

func TestSubjectCutsHugeVariables(t *testing.T) {
	c := shipped(t)
	vars := operatorVars()
	vars["game_id"] = strings.Repeat("g", 40<<10)
	m, err := c.Render("runtime.image_pull_failed", "en", vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Subject) > SubjectValueBytes+64 || !strings.Contains(m.Subject, `"… (40960 bytes)`) {
		t.Errorf("subject (%d bytes) %.80q…", len(m.Subject), m.Subject)
	}
	// Printable values within the budget are shown exactly.
	vars["game_id"] = "game-7 <b>&</b>"
	if m, _ := c.Render("runtime.image_pull_failed", "en", vars); m.Subject != "[Galaxy] Game game-7 <b>&</b>: image pull failed (x)" {
		t.Errorf("subject %q", m.Subject)
	}
}

func TestSubjectIsCutToTheHeaderLimit(t *testing.T) {
	dir := t.TempDir()
	writeTemplate(t, dir, "many", "en", map[string]string{
		"subject.tmpl": strings.Repeat("{{.v}} ", 10),
		"text.tmpl":    "t",
	})
	c, err := Load(dir, "en")
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Render("many", "en", map[string]any{"v": strings.Repeat("v", 200)})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Subject) > 998 || !strings.HasSuffix(m.Subject, "… (2009 bytes)") {
		t.Errorf("subject (%d bytes) ends %q", len(m.Subject), m.Subject[len(m.Subject)-20:])
	}
}
