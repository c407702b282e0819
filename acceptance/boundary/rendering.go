package boundary

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/gomega"

	"galaxy/harness"
)

// adminMailText is what the operator templates of one language say
// (mail/templates/runtime.*/<lang>/): each failure kind's subject, and the
// labels of the lines that show the payload in the text body and in the
// HTML table. Written out here rather than read from the templates, so a
// mail rendered from the wrong language, or from a template that lost a
// variable, fails.
type adminMailText struct {
	subject map[string]string // notification type → subject format (game_id, error_code)
	lead    string            // how the text body begins
	// Text body line labels, each followed by the value.
	game, image, code, message, attempted string
	// htmlLang is the HTML part's lang attribute; htmlGame its game row header.
	htmlLang, htmlGame string
}

var adminMailTexts = map[string]adminMailText{
	"en": {
		subject: map[string]string{
			"runtime.image_pull_failed":      "[Galaxy] Game %s: image pull failed (%s)",
			"runtime.container_start_failed": "[Galaxy] Game %s: container start failed (%s)",
			"runtime.start_config_invalid":   "[Galaxy] Game %s: start configuration failed (%s)",
		},
		lead:      "Runtime Manager ",
		game:      "Game: ",
		image:     "Image: ",
		code:      "Error code: ",
		message:   "Error message: ",
		attempted: "Attempted at: ",
		htmlLang:  `<html lang="en">`,
		htmlGame:  `>Game</th>`,
	},
	"fr": {
		subject: map[string]string{
			"runtime.image_pull_failed":      "[Galaxy] Partie %s : échec — téléchargement d'image (%s)",
			"runtime.container_start_failed": "[Galaxy] Partie %s : échec — démarrage du conteneur (%s)",
			"runtime.start_config_invalid":   "[Galaxy] Partie %s : échec — configuration de démarrage (%s)",
		},
		lead:      "Le Runtime Manager ",
		game:      "Partie : ",
		image:     "Image : ",
		code:      "Code d'erreur : ",
		message:   "Message d'erreur : ",
		attempted: "Date de la tentative : ",
		htmlLang:  `<html lang="fr">`,
		htmlGame:  `>Partie</th>`,
	},
}

// expectRendered checks that d, a delivery of notificationType's admin mail
// in the template language lang, shows payload as the templates say: the
// exact subject; in the text body, each value on its line as the producer
// sent it; in the HTML body, each value HTML-escaped as html/template
// escapes text, and never a producer's markup as it was.
func expectRendered(d harness.Delivery, lang, notificationType string, payload map[string]any) {
	text, ok := adminMailTexts[lang]
	Expect(ok).To(BeTrue(), "no expected texts for template language %q", lang)
	s := func(k string) string { v, _ := payload[k].(string); return v }
	ms, _ := payload["attempted_at_ms"].(float64)
	attempted := fmt.Sprintf("%s (%d)", time.UnixMilli(int64(ms)).UTC().Format(time.RFC3339), int64(ms))

	// Every value here is printable and at most 256 bytes, so the subject
	// shows it as it is (docs/mail.md: untrusted.Show).
	Expect(d.Subject).To(Equal(fmt.Sprintf(text.subject[notificationType], s("game_id"), s("error_code"))), "subject")

	Expect(d.TextBody).To(HavePrefix(text.lead), "text body's first line")
	lines := strings.Split(d.TextBody, "\n")
	Expect(lines).To(ContainElements(
		text.game+s("game_id"),
		text.image+s("image_ref"),
		text.code+s("error_code"),
		text.message+s("error_message"),
		text.attempted+attempted,
	), "text body lines")

	Expect(d.HTMLBody).To(And(
		ContainSubstring(text.htmlLang),
		ContainSubstring(text.htmlGame+`<td><code>`+htmlEscaped(s("game_id"))+`</code></td>`),
		ContainSubstring(`<td><code>`+htmlEscaped(s("image_ref"))+`</code></td>`),
		ContainSubstring(`<td><code>`+htmlEscaped(s("error_code"))+`</code></td>`),
		ContainSubstring(`margin: 0;">`+htmlEscaped(s("error_message"))+`</pre>`),
		ContainSubstring(`<td>`+time.UnixMilli(int64(ms)).UTC().Format(time.RFC3339)+`</td>`),
	), "HTML body")
	for _, k := range []string{"game_id", "image_ref", "error_message"} {
		if v := s(k); v != htmlEscaped(v) {
			Expect(d.HTMLBody).NotTo(ContainSubstring(v), "the HTML body shows %s unescaped", k)
		}
	}
}

// htmlEscaped is s as html/template writes a value in element text: the
// five characters that can break out of it, and '+' (which it escapes
// against UTF-7 sniffing), as character references; NUL as U+FFFD.
func htmlEscaped(s string) string {
	return strings.NewReplacer(
		"\x00", "\uFFFD",
		`"`, "&#34;",
		"&", "&amp;",
		"'", "&#39;",
		"+", "&#43;",
		"<", "&lt;",
		">", "&gt;",
	).Replace(s)
}
