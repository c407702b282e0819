package intent

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTemplateVariablesKeepsThePayloadAsWritten(t *testing.T) {
	for payload, want := range map[string]string{
		`{}`:                              `{"user_display_name":"Ada <&>"}`,
		` { "a" : 1 , "b":"<&>\u003c" } `: `{"a" : 1,"b":"<&>\u003c","user_display_name":"Ada <&>"}`,
		`{"user_display_name":"forged","x":[1,{"y":null}]}`: `{"x":[1,{"y":null}],"user_display_name":"Ada <&>"}`,
		`{"x":1,"user_display_name":"forged"}`:              `{"x":1,"user_display_name":"Ada <&>"}`,
	} {
		got, err := TemplateVariables(payload, "Ada <&>")
		if err != nil || got != want {
			t.Errorf("TemplateVariables(%s) = %s, %v; want %s", payload, got, err, want)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(got), &v); err != nil || v[DisplayNameField] != "Ada <&>" {
			t.Errorf("TemplateVariables(%s) = %s is not the object wanted: %v", payload, got, err)
		}
	}
}

func TestTemplateVariablesGrowsOnlyByTheDisplayName(t *testing.T) {
	head := `{"game_id":"g","game_name":"`
	payload := head + strings.Repeat("<&>", MaxPayloadBytes)[:MaxPayloadBytes-len(head)-2] + `"}`
	name := strings.Repeat("\u2028", 200) // the worst a 200-character name can do: six bytes each
	got, err := TemplateVariables(payload, name)
	if err != nil {
		t.Fatal(err)
	}
	if max := MaxPayloadBytes + 1 + len(`"user_display_name":`) + 200*6 + 2; len(got) > max {
		t.Errorf("variables are %d bytes, want at most %d", len(got), max)
	}
	// Mail's template variables limit (mail/command.MaxVariablesBytes).
	if len(got) > 66<<10 {
		t.Errorf("variables are %d bytes, over Mail's limit", len(got))
	}
}

func TestTemplateVariablesRefusesWhatIsNotAnObject(t *testing.T) {
	for _, payload := range []string{``, `[1]`, `{"a":}`, `"x"`} {
		if _, err := TemplateVariables(payload, "Ada"); err == nil {
			t.Errorf("TemplateVariables(%q) took it", payload)
		}
	}
}
