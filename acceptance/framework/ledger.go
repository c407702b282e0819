package framework

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"

	"galaxy/harness"
)

// The run-wide ledger (harness.Ledger) of the shared pipelines: each spec
// registers what it expects a pipeline to produce for what it created, and
// after the process's last spec CheckLedger compares it with what the
// pipeline holds — nothing missing, nothing extra — naming the spec behind
// each difference. docs/acceptance.md, "The run-wide ledger".

// watched is a pipeline the ledger watches, with its admin lists.
type watched struct {
	ledger *harness.Ledger
	p      *harness.Pipeline
	admins map[string]string // notification type → admin list, as configured
}

var (
	ledgersMu sync.Mutex
	ledgers   = map[*harness.Pipeline]*watched{}
)

// KeepLedger has the ledger watch p, a shared pipeline started with opts:
// from now on what specs publish on it is attributed to them, and
// CheckLedger compares its streams and Mail with what they registered.
// Calling it again for p does nothing.
func KeepLedger(p *harness.Pipeline, opts harness.PipelineOptions) {
	ledgersMu.Lock()
	defer ledgersMu.Unlock()
	if ledgers[p] != nil {
		return
	}
	l := harness.NewLedger(p)
	if p.Deployed {
		l.Since = time.UnixMilli(world.StartedAtMS)
	}
	ledgers[p] = &watched{ledger: l, p: p, admins: opts.AdminEmails}
	p.OnPublish = func(stream, entryID string, fields map[string]string) {
		l.Published(specName(), stream, entryID, fields)
	}
}

func specName() string { return "[" + ginkgo.CurrentSpecReport().FullText() + "]" }

func ledgerOf(p *harness.Pipeline) *watched {
	ledgersMu.Lock()
	defer ledgersMu.Unlock()
	w := ledgers[p]
	if w == nil {
		panic("framework: the ledger does not watch this pipeline (KeepLedger)")
	}
	return w
}

// ExpectForGame registers, for the running spec, what gameID is to have
// received on p by the end of the run.
func ExpectForGame(p *harness.Pipeline, gameID string, e harness.Effects) {
	ledgerOf(p).ledger.Expect(specName(), harness.GameSubject(gameID), e)
}

// ExpectForRecipient registers the mails from Notification that recipient,
// an address of the running spec's own, is to have received on p by the end
// of the run, for intents whose payload names no game.
func ExpectForRecipient(p *harness.Pipeline, recipient string, mails ...string) {
	ledgerOf(p).ledger.Expect(specName(), harness.RecipientSubject(recipient), harness.Effects{Mails: mails})
}

// ExpectDelivery registers, for the running spec, the one delivery the mail
// command with idempotency key key is to have on p, a pipeline of Mail
// without Notification, by the end of the run, with its final status. It
// names the spec behind key however the command came, stream or HTTP.
func ExpectDelivery(p *harness.Pipeline, key, status string) {
	if p.NotificationURL != "" {
		panic("framework: the ledger counts deliveries by command only on a pipeline without Notification")
	}
	ledgerOf(p).ledger.Expect(specName(), harness.CommandSubject(key), harness.Effects{Deliveries: []string{status}})
}

// ExpectFailedStart registers what one failed start of gameID with
// errorCode produces on p: one failed start result, one runtime.<code>
// intent, and one sent mail to each address of that type's admin list.
func ExpectFailedStart(p *harness.Pipeline, gameID, errorCode string) {
	w := ledgerOf(p)
	notificationType := "runtime." + errorCode
	e := harness.Effects{Results: []string{harness.ResultLine("start", "failed", errorCode)}, Intents: []string{notificationType}}
	e.Mails = AdminMails(w.admins, notificationType)
	w.ledger.Expect(specName(), harness.GameSubject(gameID), e)
}

// AdminMails are the sent mails an intent of notificationType produces
// with the admin lists admins: one per address of its list.
func AdminMails(admins map[string]string, notificationType string) []string {
	var out []string
	for _, addr := range strings.Split(admins[notificationType], ",") {
		if addr = strings.TrimSpace(addr); addr != "" {
			out = append(out, harness.MailLine(notificationType, addr, "sent"))
		}
	}
	return out
}

// CheckLedger settles every pipeline the ledger watches and compares what
// its streams and Mail hold with what the specs registered, failing with
// every difference. It runs after the process's last spec (an AfterSuite).
func CheckLedger(ctx context.Context) {
	ledgersMu.Lock()
	all := slices.Collect(maps.Values(ledgers))
	ledgersMu.Unlock()
	var problems []string
	for _, w := range all {
		Settle(ctx, w.p)
		found, err := w.ledger.Check(ctx)
		if err != nil {
			problems = append(problems, err.Error())
		}
		problems = append(problems, found...)
	}
	if len(problems) > 0 {
		ginkgo.Fail(fmt.Sprintf("the run's ledger does not match what the pipeline produced (%d differences):\n%s",
			len(problems), strings.Join(problems, "\n")))
	}
}
