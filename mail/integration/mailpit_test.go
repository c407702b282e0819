package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"galaxy/harness"
)

// mailpit is the harness's Mailpit (a real SMTP server with its HTTP API on
// loopback, chaos triggers enabled) plus the API calls these tests need.
type mailpit struct {
	*harness.Mailpit
	t *testing.T
}

func startMailpit(t *testing.T) *mailpit {
	t.Helper()
	return &mailpit{Mailpit: harness.StartMailpit(context.Background(), t), t: t}
}

// message is a Mailpit message summary.
type message struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	From    struct {
		Name    string `json:"Name"`
		Address string `json:"Address"`
	} `json:"From"`
	To []struct {
		Name    string `json:"Name"`
		Address string `json:"Address"`
	} `json:"To"`
	Cc []struct {
		Address string `json:"Address"`
	} `json:"Cc"`
	Bcc []struct {
		Address string `json:"Address"`
	} `json:"Bcc"`
	ReplyTo []struct {
		Address string `json:"Address"`
	} `json:"ReplyTo"`
	MessageID string `json:"MessageID"`
	Text      string `json:"Text"`
	HTML      string `json:"HTML"`
}

func (m *mailpit) getJSON(path string, v any) {
	m.t.Helper()
	r, err := http.Get(m.APIURL + path)
	if err != nil {
		m.t.Fatalf("mailpit GET %s: %v", path, err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		m.t.Fatalf("mailpit GET %s: %d %s", path, r.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		m.t.Fatalf("mailpit GET %s: decode: %v: %s", path, err, body)
	}
}

// search returns the messages matching a Mailpit search query ("to:x").
func (m *mailpit) search(query string) []message {
	m.t.Helper()
	var res struct {
		Messages []message `json:"messages"`
	}
	m.getJSON("/api/v1/search?query="+url.QueryEscape(query), &res)
	return res.Messages
}

// message returns one message in full (text and HTML parts decoded).
func (m *mailpit) message(id string) message {
	m.t.Helper()
	var msg message
	m.getJSON("/api/v1/message/"+url.PathEscape(id), &msg)
	return msg
}

// raw returns the message source as received.
func (m *mailpit) raw(id string) string {
	m.t.Helper()
	r, err := http.Get(m.APIURL + "/api/v1/message/" + url.PathEscape(id) + "/raw")
	if err != nil {
		m.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// chaos sets Mailpit's failure triggers (PUT /api/v1/chaos); an empty body
// turns them off.
func (m *mailpit) chaos(triggers map[string]any) {
	m.t.Helper()
	body, _ := json.Marshal(triggers)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, m.APIURL+"/api/v1/chaos", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(r.Body)
		m.t.Fatalf("mailpit chaos: %d %s", r.StatusCode, b)
	}
}
