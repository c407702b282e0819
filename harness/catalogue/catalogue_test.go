package catalogue

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadReadsFilesInOrder(t *testing.T) {
	all, err := Load(fstest.MapFS{
		"b.yaml": {Data: []byte("- id: rtm.b\n  section: s\n  behavior: >\n    It MUST\n    hold.\n")},
		"a.yaml": {Data: []byte("- id: mail.a\n  section: s\n  behavior: It MUST NOT fail.\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Behavior{
		{ID: "mail.a", Section: "s", Behavior: "It MUST NOT fail.", File: "a.yaml"},
		{ID: "rtm.b", Section: "s", Behavior: "It MUST hold.", File: "b.yaml"},
	}
	if !slices.Equal(all, want) {
		t.Errorf("Load = %+v, want %+v", all, want)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"unknown key":   {"- id: rtm.a\n  section: s\n  behavior: It MUST.\n  owner: x\n", "field owner not found"},
		"bad id":        {"- id: RTM.A\n  section: s\n  behavior: It MUST.\n", "id must be"},
		"unknown area":  {"- id: lobby.a\n  section: s\n  behavior: It MUST.\n", "id must be"},
		"no section":    {"- id: rtm.a\n  behavior: It MUST.\n", "section is empty"},
		"no must":       {"- id: rtm.a\n  section: s\n  behavior: It should.\n", "MUST or MUST NOT"},
		"lower-case":    {"- id: rtm.a\n  section: s\n  behavior: It must.\n", "MUST or MUST NOT"},
		"no full stop":  {"- id: rtm.a\n  section: s\n  behavior: It MUST\n", "full stop"},
		"duplicate id":  {"- id: rtm.a\n  section: s\n  behavior: It MUST.\n- id: rtm.a\n  section: s\n  behavior: It MUST.\n", "already used"},
		"no behaviours": {"[]\n", "no behaviour"},
	} {
		_, err := Load(fstest.MapFS{"x.yaml": {Data: []byte(c.yaml)}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Load = %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestOf(t *testing.T) {
	got := Of([]string{"boundary", "behavior:rtm.a", "smoke", "behavior:mail.b"})
	if !slices.Equal(got, []string{"rtm.a", "mail.b"}) {
		t.Errorf("Of = %v", got)
	}
	if got := (Behavior{ID: "rtm.a"}).Label(); got != "behavior:rtm.a" {
		t.Errorf("Label = %q", got)
	}
}
