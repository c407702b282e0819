package harness

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onsi/gomega/gbytes"
)

// processLog collects a process's output: all of it in a gbytes.Buffer (so a
// test can wait for a line with gbytes.Say), and each line with the time it
// arrived (so a failed spec can show only what was written while it ran).
type processLog struct {
	buf *gbytes.Buffer

	mu      sync.Mutex
	partial []byte
	lines   []logLine
}

type logLine struct {
	at   time.Time
	text string
}

func newProcessLog() *processLog {
	return &processLog{buf: gbytes.NewBuffer()}
}

func (l *processLog) Write(p []byte) (int, error) {
	_, _ = l.buf.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	data := append(l.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		l.addLine(now, string(data[:i]))
		data = data[i+1:]
	}
	l.partial = append([]byte(nil), data...)
	return len(p), nil
}

// note adds a line of the harness's own (start, exit), marked as such.
func (l *processLog) note(text string) {
	line := "--- harness: " + text + " ---\n"
	_, _ = l.Write([]byte(line))
}

func (l *processLog) addLine(at time.Time, text string) {
	l.lines = append(l.lines, logLine{at: at, text: text})
}

// since returns the lines that arrived at or after t, at most limit (the last
// ones), plus any unterminated last line.
func (l *processLog) since(t time.Time, limit int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := len(l.lines)
	for start > 0 && !l.lines[start-1].at.Before(t) {
		start--
	}
	return l.render(start, limit)
}

// tail returns the last n lines.
func (l *processLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.render(0, n)
}

func (l *processLog) render(start, limit int) string {
	var b strings.Builder
	if limit > 0 && len(l.lines)-start > limit {
		b.WriteString("... " + strconv.Itoa(len(l.lines)-start-limit) + " earlier lines left out ...\n")
		start = len(l.lines) - limit
	}
	for _, line := range l.lines[start:] {
		b.WriteString(line.text)
		b.WriteByte('\n')
	}
	if len(l.partial) > 0 {
		b.Write(l.partial)
		b.WriteByte('\n')
	}
	return b.String()
}
