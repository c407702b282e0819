package smtpsend

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
)

func TestClassify(t *testing.T) {
	cases := map[string]struct {
		err       error
		temporary bool
		code      int
	}{
		"connection refused": {fmt.Errorf("dial failed: %w", syscall.ECONNREFUSED), true, 0},
		"greeting 421":       {fmt.Errorf("dial failed: %w", &textproto.Error{Code: 421, Msg: "busy"}), true, 421},
		"greeting 554":       {fmt.Errorf("dial failed: %w", &textproto.Error{Code: 554, Msg: "go away"}), false, 554},
		"already classified": {fmt.Errorf("x: %w", &Error{Temporary: false, Code: 552, Detail: "too big"}), false, 552},
		"unknown":            {errors.New("something odd"), true, 0},
	}
	for name, c := range cases {
		got := Classify(c.err)
		if got.Temporary != c.temporary || got.Code != c.code || got.Detail == "" {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) is not nil")
	}
}

func TestHeadersAreCheckedBeforeSending(t *testing.T) {
	ok := Message{MessageID: "d.1@galaxy-mail", To: []string{"a@example.com"}, Subject: "Hello", Text: "t"}
	if err := (Stub{}).Send(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Message){
		"subject LF":    func(m *Message) { m.Subject = "a\nBcc: x@example.com" },
		"subject CR":    func(m *Message) { m.Subject = "a\rb" },
		"empty subject": func(m *Message) { m.Subject = " " },
		"to CRLF":       func(m *Message) { m.To = []string{"a@example.com\r\nBcc: x@example.com"} },
		"reply-to LF":   func(m *Message) { m.ReplyTo = "r@example.com\n" },
		"no recipient":  func(m *Message) { m.To = nil },
		"message-id LF": func(m *Message) { m.MessageID = "a\nb" },
	} {
		m := ok
		change(&m)
		err := (Stub{}).Send(context.Background(), m)
		var se *Error
		if !errors.As(err, &se) || se.Temporary || !strings.Contains(se.Detail, "invalid") && !strings.Contains(se.Detail, "no recipient") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestNewSMTPChecksConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no port":   {Addr: "localhost", From: "a@example.com"},
		"bad port":  {Addr: "localhost:x", From: "a@example.com"},
		"bad from":  {Addr: "localhost:25", From: "nobody"},
		"from CRLF": {Addr: "localhost:25", From: "a@example.com\r\nBcc: b@example.com"},
	} {
		if _, err := NewSMTP(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewSMTP(Config{Addr: "127.0.0.1:2525", From: "Galaxy <mail@example.com>", Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
}
