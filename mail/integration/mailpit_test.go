package integration_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"galaxy/harness"
)

// startMailpit starts the harness's Mailpit: a real SMTP server with its
// HTTP API on loopback, chaos triggers enabled.
func startMailpit(t *testing.T) *harness.Mailpit {
	t.Helper()
	return harness.StartMailpit(context.Background(), t)
}

// search returns the messages matching a Mailpit search query ("to:x").
func search(t *testing.T, mp *harness.Mailpit, query string) []harness.MailpitMessage {
	t.Helper()
	msgs, err := mp.Client().Search(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// messageCount is the number of messages Mailpit holds.
func messageCount(t *testing.T, mp *harness.Mailpit) int {
	t.Helper()
	msgs, err := mp.Client().Messages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs)
}

// fullMessage returns one message in full (text and HTML parts decoded).
func fullMessage(t *testing.T, mp *harness.Mailpit, id string) harness.MailpitFullMessage {
	t.Helper()
	msg, err := mp.Client().Message(t.Context(), id)
	if err != nil {
		t.Fatalf("mailpit message %s: %v", id, err)
	}
	return msg
}

// rawMessage returns the message source as received. (MailpitClient has no
// call for it.)
func rawMessage(t *testing.T, mp *harness.Mailpit, id string) string {
	t.Helper()
	u := mp.APIURL + "/api/v1/message/" + url.PathEscape(id) + "/raw"
	r, err := harness.Do(t.Context(), harness.Request{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, r.Status, r.Body)
	}
	return string(r.Body)
}

// setChaos replaces Mailpit's failure triggers; the zero value turns them
// off.
func setChaos(t *testing.T, mp *harness.Mailpit, chaos harness.MailpitChaos) {
	t.Helper()
	if _, err := mp.Client().SetChaos(t.Context(), chaos); err != nil {
		t.Fatalf("mailpit chaos: %v", err)
	}
}
