// Package smtpsend hands rendered messages to their transport: an SMTP server
// (wneessen/go-mail), or the stub that sends nothing and succeeds.
//
// It is also where a failure is classified, once: a reply code 4xx and
// connection trouble are temporary (worth another attempt later), 5xx is
// permanent. The sender decides what to do with the class; it never looks at
// error text.
package smtpsend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"galaxy/mail/command"
)

// Message is one rendered message.
type Message struct {
	// MessageID becomes the Message-ID header (without angle brackets). It
	// is stable across the attempts of one sequence, so a receiver can tell
	// a retry from a new message.
	MessageID string
	To        []string
	Cc        []string
	Bcc       []string
	ReplyTo   string
	Subject   string
	Text      string
	HTML      string
}

// Transport sends one message.
type Transport interface {
	Send(ctx context.Context, m Message) error
}

// Error is a classified send failure.
type Error struct {
	// Temporary failures are retried; the others fail the delivery.
	Temporary bool
	// Code is the SMTP reply code, 0 when the server gave none.
	Code int
	// Detail is what went wrong, the server's reply included.
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// AfterAcceptance is what Send returns when the server accepted the message
// and something failed afterwards: the message is sent, and Detail is for
// the record of the attempt, not a reason to send again.
type AfterAcceptance struct {
	Detail string
}

func (e *AfterAcceptance) Error() string { return e.Detail }

// Classify turns any error from a send into an *Error.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	detail := err.Error()
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		switch {
		case code >= 500:
			return &Error{Temporary: false, Code: code, Detail: detail}
		case code >= 400:
			return &Error{Temporary: true, Code: code, Detail: detail}
		default:
			// go-mail's own failures (lost connection and the like) carry no
			// reply code; IsTemp reads the first reply digit when there is one.
			return &Error{Temporary: true, Code: 0, Detail: detail}
		}
	}
	var pe *textproto.Error
	if errors.As(err, &pe) {
		// A reply during connection set-up: greeting, EHLO, STARTTLS, AUTH.
		return &Error{Temporary: pe.Code < 500, Code: pe.Code, Detail: detail}
	}
	// Dial failures, timeouts, resets, TLS handshakes: the server may be
	// back later.
	return &Error{Temporary: true, Detail: detail}
}

// Stub is the transport of MAIL_SMTP_MODE=stub: no network; every message
// succeeds. The rendered message stays on the delivery for inspection.
type Stub struct{}

// Send checks the headers as the SMTP transport would, then succeeds.
func (Stub) Send(_ context.Context, m Message) error {
	return checkHeaders(m)
}

// Config configures the SMTP transport.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// From is the envelope and header sender.
	From string
	// Username and Password enable SMTP AUTH when Username is set.
	Username string
	Password string
	// StartTLS requires STARTTLS; without it the connection stays plain.
	StartTLS bool
	// Timeout bounds one whole send: connect, conversation, data.
	Timeout time.Duration
	// HELO is the name given in EHLO (default: the host name).
	HELO string
}

// SMTP sends through an SMTP server, one connection per message: a
// connection outlives neither a server restart nor a network change, and
// per-message connections make every attempt independent of the last.
type SMTP struct {
	client *gomail.Client
	from   string
}

// NewSMTP checks cfg and returns the transport. It does not connect.
func NewSMTP(cfg Config) (*SMTP, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp address %q: %w", cfg.Addr, err)
	}
	var portNum int
	if _, err := fmt.Sscanf(port, "%d", &portNum); err != nil || portNum <= 0 || portNum > 65535 {
		return nil, fmt.Errorf("smtp address %q: bad port", cfg.Addr)
	}
	if _, err := command.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("smtp sender %q: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	opts := []gomail.Option{
		gomail.WithPort(portNum),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSPolicy(gomail.NoTLS),
	}
	if cfg.StartTLS {
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(cfg.HELO))
	}
	if cfg.Username != "" {
		auth := gomail.SMTPAuthPlain
		if !cfg.StartTLS {
			// PLAIN over a plain connection is refused by go-mail unless
			// asked for by name; the operator chose no STARTTLS.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	client, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client for %s: %w", cfg.Addr, err)
	}
	return &SMTP{client: client, from: cfg.From}, nil
}

// Send delivers m to the server.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := checkHeaders(m); err != nil {
		return err
	}
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	if err := s.client.DialAndSendWithContext(ctx, msg); err != nil {
		if msg.IsDelivered() {
			// The server answered 250 to the data: it has the message.
			// What failed after that (the RSET or QUIT that follow, the
			// connection) cannot unsend it, and sending again would give
			// the recipient a second copy.
			return &AfterAcceptance{Detail: fmt.Sprintf("send %s: accepted by the server; afterwards: %v", m.MessageID, err)}
		}
		return Classify(fmt.Errorf("send %s: %w", m.MessageID, err))
	}
	return nil
}

func (s *SMTP) build(m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	invalid := func(what string, err error) error {
		return &Error{Temporary: false, Detail: fmt.Sprintf("invalid %s: %v", what, err)}
	}
	if err := msg.From(s.from); err != nil {
		return nil, invalid("sender", err)
	}
	if err := msg.To(m.To...); err != nil {
		return nil, invalid("to", err)
	}
	if len(m.Cc) > 0 {
		if err := msg.Cc(m.Cc...); err != nil {
			return nil, invalid("cc", err)
		}
	}
	if len(m.Bcc) > 0 {
		if err := msg.Bcc(m.Bcc...); err != nil {
			return nil, invalid("bcc", err)
		}
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return nil, invalid("reply-to", err)
		}
	}
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	} else {
		msg.SetMessageID()
	}
	msg.SetDate()
	msg.Subject(m.Subject)
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.HTML != "":
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	}
	return msg, nil
}

// checkHeaders refuses a message whose header values carry CR, LF or other
// control characters. go-mail encodes header values but does not strip line
// breaks, so this is the last line of defence against header injection.
func checkHeaders(m Message) error {
	bad := func(what, v string, max int) error {
		if err := command.CheckHeaderValue(v, max); err != nil {
			return &Error{Temporary: false, Detail: fmt.Sprintf("invalid %s header: %v", what, err)}
		}
		return nil
	}
	if strings.TrimSpace(m.Subject) == "" {
		return &Error{Temporary: false, Detail: "invalid subject header: empty"}
	}
	if err := bad("subject", m.Subject, command.MaxSubjectLen); err != nil {
		return err
	}
	if err := bad("message-id", m.MessageID, 250); err != nil {
		return err
	}
	if len(m.To) == 0 {
		return &Error{Temporary: false, Detail: "no recipient"}
	}
	addrs := append(append(append([]string{}, m.To...), m.Cc...), m.Bcc...)
	if m.ReplyTo != "" {
		addrs = append(addrs, m.ReplyTo)
	}
	for _, a := range addrs {
		if _, err := command.ParseAddress(a); err != nil {
			return &Error{Temporary: false, Detail: fmt.Sprintf("invalid address header: %v", err)}
		}
	}
	return nil
}
