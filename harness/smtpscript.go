package harness

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// ScriptedSMTP is a small SMTP server for the faults Mailpit cannot make: a
// server that accepts a message — 250 to its data — and then fails. It
// speaks just enough SMTP for a client without TLS or AUTH (EHLO, MAIL,
// RCPT, DATA, RSET, NOOP, QUIT) and, on the first command named DropAt of a
// connection, closes that connection without a reply, as a server that
// crashes or a network that breaks after accepting would. Accepted counts
// the messages it answered 250 to.
type ScriptedSMTP struct {
	Addr   string // 127.0.0.1:port
	DropAt string // an SMTP verb ("QUIT", "RSET"); "" drops nothing

	accepted atomic.Int64
	ln       net.Listener
	wg       sync.WaitGroup
}

// StartScriptedSMTP listens on a free loopback port until tb's clean-up.
func StartScriptedSMTP(tb TB, dropAt string) *ScriptedSMTP {
	tb.Helper()
	ln, err := net.Listen("tcp", FreeTCPAddress(tb))
	if err != nil {
		tb.Fatalf("scripted SMTP server: %v", err)
	}
	s := &ScriptedSMTP{Addr: ln.Addr().String(), DropAt: strings.ToUpper(dropAt), ln: ln}
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

// Accepted is how many messages the server answered 250 to.
func (s *ScriptedSMTP) Accepted() int { return int(s.accepted.Load()) }

func (s *ScriptedSMTP) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // closed by the clean-up
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.converse(conn)
		}()
	}
}

func (s *ScriptedSMTP) converse(conn net.Conn) {
	r := bufio.NewReader(conn)
	reply := func(lines ...string) bool {
		_, err := conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
		return err == nil
	}
	if !reply("220 scripted ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimSpace(line)), " ")
		if verb == s.DropAt {
			return
		}
		var ok bool
		switch verb {
		case "EHLO", "HELO":
			ok = reply("250-scripted", "250 8BITMIME")
		case "MAIL", "RCPT", "RSET", "NOOP":
			ok = reply("250 OK")
		case "DATA":
			if !reply("354 end with <CRLF>.<CRLF>") {
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
			}
			s.accepted.Add(1)
			ok = reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			ok = reply("502 not implemented")
		}
		if !ok {
			return
		}
	}
}
