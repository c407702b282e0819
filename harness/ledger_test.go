package harness

import (
	"strings"
	"testing"
)

func TestLedgerNamesWhatIsMissingAndWhatIsExtra(t *testing.T) {
	l := NewLedger(&Pipeline{})
	l.Published("[spec A]", "runtime:start_jobs", "1-0", map[string]string{"game_id": "a"})
	l.Published("[spec B]", "runtime:start_jobs", "2-0", map[string]string{"game_id": "b"})
	l.Expect("[spec A]", GameSubject("a"), Effects{
		Results: []string{ResultLine("start", "failed", "image_pull_failed")},
		Intents: []string{"runtime.image_pull_failed"},
		Mails:   []string{MailLine("runtime.image_pull_failed", "admin@example.com", "sent")},
	})
	found := map[string]Effects{
		GameSubject("a"): {
			Results: []string{"start failed image_pull_failed"},
			Intents: []string{"runtime.image_pull_failed", "runtime.image_pull_failed"},
		},
		GameSubject("b"): {Results: []string{"start succeeded"}},
		GameSubject("c"): {Intents: []string{"runtime.container_start_failed"}},
	}
	expectProblems(t, l.compare(found),
		"- game a (expected by [spec A]): intents extra: runtime.image_pull_failed; mails missing: runtime.image_pull_failed to admin@example.com: sent",
		"- game b (created by [spec B], which expected nothing of it): job results extra: start succeeded",
		"- game c (no test created it): intents extra: runtime.container_start_failed",
	)
}

// expectProblems checks that compare found exactly the problems want.
func expectProblems(t *testing.T, problems []string, want ...string) {
	t.Helper()
	got := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("compare lacks %q:\n%s", w, got)
		}
	}
	if len(problems) != len(want) {
		t.Errorf("compare: %d problems, want %d:\n%s", len(problems), len(want), got)
	}
}

func TestLedgerAcceptsWhatWasExpected(t *testing.T) {
	l := NewLedger(&Pipeline{})
	l.Expect("[spec A]", GameSubject("a"), Effects{Results: []string{"stop succeeded"}})
	l.Expect("[spec A]", GameSubject("a"), Effects{Results: []string{"start succeeded"}})
	found := map[string]Effects{GameSubject("a"): {Results: []string{"start succeeded", "stop succeeded"}}}
	if got := l.compare(found); len(got) != 0 {
		t.Errorf("compare = %q, want nothing", got)
	}
}

func TestLedgerLearnsSubjectsFromWhatTestsPublish(t *testing.T) {
	p := &Pipeline{Streams: PipelineStreams{Intents: "notification:intents:x"}}
	l := NewLedger(p)
	l.Published("[spec I]", p.Streams.Intents, "5-0", map[string]string{"payload_json": `{"game_id":"g"}`})
	l.Published("[spec M]", "mail:delivery_commands:x", "6-0", map[string]string{"to_json": `["a@example.com"]`})
	if !l.inputs["5-0"] {
		t.Error("an intent a test published is not its input")
	}
	expectProblems(t, l.compare(map[string]Effects{
		GameSubject("g"):                  {Mails: []string{"m"}},
		RecipientSubject("a@example.com"): {Mails: []string{"n"}},
	}), "game g (created by [spec I]", "recipient a@example.com (created by [spec M]")
}

func TestLedgerCountsDeliveriesByCommandWithoutNotification(t *testing.T) {
	p := &Pipeline{Streams: PipelineStreams{MailCommands: "mail:delivery_commands:x"}}
	l := NewLedger(p)
	l.Published("[spec S]", p.Streams.MailCommands, "7-0", map[string]string{"idempotency_key": "k1", "to_json": `["a@example.com"]`})
	l.Published("[spec S]", p.Streams.MailCommands, "8-0", map[string]string{"idempotency_key": "k2"})
	l.Expect("[spec S]", CommandSubject("k1"), Effects{Deliveries: []string{"sent"}})
	l.Expect("[spec H]", CommandSubject("k3"), Effects{Deliveries: []string{"failed"}})
	l.Expect("[spec H]", CommandSubject("k4"), Effects{Deliveries: []string{"sent"}})
	expectProblems(t, l.compare(map[string]Effects{
		CommandSubject("k1"): {Deliveries: []string{"sent", "sent"}},
		CommandSubject("k2"): {Deliveries: []string{"failed"}},
		CommandSubject("k4"): {Deliveries: []string{"sent"}},
	}),
		"- command k1 (expected by [spec S]): deliveries extra: sent",
		"- command k2 (created by [spec S], which expected nothing of it): deliveries extra: failed",
		"- command k3 (expected by [spec H]): deliveries missing: failed",
	)
}

func TestLedgerOnADeploymentComparesOnlyItsOwnSubjects(t *testing.T) {
	l := NewLedger(&Pipeline{Deployed: true})
	l.Published("[spec A]", "runtime:start_jobs", "1-0", map[string]string{"game_id": "a"})
	l.Expect("[spec B]", GameSubject("b"), Effects{Results: []string{"start succeeded"}})
	found := map[string]Effects{
		GameSubject("a"):        {Results: []string{"start succeeded"}},
		GameSubject("lobby-42"): {Results: []string{"start failed image_pull_failed"}},
	}
	expectProblems(t, l.compare(found),
		"- game a (created by [spec A], which expected nothing of it): job results extra: start succeeded",
		"- game b (expected by [spec B]): job results missing: start succeeded",
	)
}
