package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"galaxy/harness"
	"galaxy/loadtest/procstat"
	"galaxy/loadtest/quantile"
	"galaxy/loadtest/svgplot"
)

// sample is one measured job's timeline, in Unix milliseconds.
type sample struct {
	o                                           *outcome
	published, result, intent, sent             float64
	e2e, jobToResult, jobToIntent, intentToSent float64
}

type report struct {
	opts    options
	res     collected
	pub     *publisher
	sampler *procstat.Sampler

	samples []sample // measured jobs whose mail was sent, in job order

	measuredJobs                                int
	missing, duplicates                         int
	resultsNotOne, intentsNotOne                int
	unexpectedResults, notSent                  int
	offeredPerSec, mailsPerSec                  float64
	resultsPerSec                               float64
	e2e, jobToResult, jobToIntent, intentToSent quantile.Summary
	firstFifthP50, lastFifthP50                 float64

	cpu           *cpuMeter
	rtmJobSeconds float64
	rtmJobs       int64
}

func millis(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

func newReport(o options, res collected, pub *publisher, sampler *procstat.Sampler) *report {
	r := &report{opts: o, res: res, pub: pub, sampler: sampler}
	r.duplicates = res.strays
	var firstPub, lastPub float64
	firstSent, lastSent := math.Inf(1), math.Inf(-1)
	firstResult, lastResult := math.Inf(1), math.Inf(-1)
	for i := range res.outcomes {
		out := &res.outcomes[i]
		if len(out.results) != 1 {
			r.resultsNotOne++
		}
		for _, e := range out.results {
			if e.fields["outcome"] != "failed" || e.fields["error_code"] != "image_pull_failed" {
				r.unexpectedResults++
			}
		}
		if len(out.intents) != 1 {
			r.intentsNotOne++
		}
		var sent *harness.Delivery
		for k := range out.deliveries {
			d := &out.deliveries[k]
			if d.Status == "sent" && d.SentAtMS != nil && sent == nil {
				sent = d
			}
			if d.Status != "sent" {
				r.notSent++
			}
		}
		if len(out.deliveries) > 1 {
			r.duplicates += len(out.deliveries) - 1
		}
		if sent == nil {
			r.missing++
		}
		if out.warm {
			continue
		}
		r.measuredJobs++
		pubMS := millis(out.publishedAt)
		if r.measuredJobs == 1 {
			firstPub = pubMS
		}
		lastPub = pubMS
		if len(out.results) > 0 {
			firstResult = min(firstResult, float64(out.results[0].ms))
			lastResult = max(lastResult, float64(out.results[0].ms))
		}
		if sent == nil || len(out.intents) == 0 {
			continue
		}
		s := sample{o: out, published: pubMS, intent: float64(out.intents[0].ms), sent: float64(*sent.SentAtMS)}
		if len(out.results) > 0 {
			s.result = float64(out.results[0].ms)
			s.jobToResult = s.result - s.published
		}
		s.e2e = s.sent - s.published
		s.jobToIntent = s.intent - s.published
		s.intentToSent = s.sent - s.intent
		firstSent, lastSent = min(firstSent, s.sent), max(lastSent, s.sent)
		r.samples = append(r.samples, s)
	}
	if r.measuredJobs > 1 && lastPub > firstPub {
		r.offeredPerSec = float64(r.measuredJobs-1) / ((lastPub - firstPub) / 1000)
	}
	if len(r.samples) > 1 && lastSent > firstSent {
		r.mailsPerSec = float64(len(r.samples)-1) / ((lastSent - firstSent) / 1000)
	}
	if lastResult > firstResult {
		r.resultsPerSec = float64(r.measuredJobs-1) / ((lastResult - firstResult) / 1000)
	}
	pick := func(f func(sample) float64) []float64 {
		v := make([]float64, len(r.samples))
		for i, s := range r.samples {
			v[i] = f(s)
		}
		return v
	}
	r.e2e = quantile.Summarize(pick(func(s sample) float64 { return s.e2e }))
	r.jobToResult = quantile.Summarize(pick(func(s sample) float64 { return s.jobToResult }))
	r.jobToIntent = quantile.Summarize(pick(func(s sample) float64 { return s.jobToIntent }))
	r.intentToSent = quantile.Summarize(pick(func(s sample) float64 { return s.intentToSent }))
	if n := len(r.samples); n >= 10 {
		fifth := n / 5
		e2e := pick(func(s sample) float64 { return s.e2e })
		r.firstFifthP50 = quantile.Summarize(e2e[:fifth]).P50
		r.lastFifthP50 = quantile.Summarize(e2e[n-fifth:]).P50
	}
	return r
}

// keepingUp says whether the pipeline kept pace with the offered rate: the
// median latency of the last fifth of the jobs is not much above that of
// the first fifth. A rate above capacity builds a backlog, and the backlog
// shows as latency growing with the job number.
func (r *report) keepingUp() bool {
	return r.missing == 0 && r.lastFifthP50 <= 2*r.firstFifthP50+250
}

func (r *report) print(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "\npipeline load: %g jobs/s for %s (+%s warm-up), %d jobs, RTMANAGER_JOB_CONCURRENCY %s\n",
		o.rate, o.duration, o.warmup, len(r.res.outcomes), concurrencyText(o.rtmConcurrency))
	if len(o.env) > 0 {
		fmt.Fprintf(w, "  service settings: %s\n", o.env)
	}
	fmt.Fprintf(w, "  offered        %8.1f jobs/s (publisher lag max %s)\n", r.offeredPerSec, r.pub.maxLag.Round(time.Millisecond))
	fmt.Fprintf(w, "  job results    %8.1f jobs/s (Runtime Manager)\n", r.resultsPerSec)
	fmt.Fprintf(w, "  mails sent     %8.1f mails/s (%d of %d measured jobs)\n", r.mailsPerSec, len(r.samples), r.measuredJobs)
	fmt.Fprintf(w, "  latency (ms)        p50      p95      p99      max\n")
	for _, row := range []struct {
		name string
		s    quantile.Summary
	}{
		{"end to end", r.e2e}, {"job → result", r.jobToResult}, {"job → intent", r.jobToIntent}, {"intent → sent", r.intentToSent},
	} {
		fmt.Fprintf(w, "  %-14s %8.0f %8.0f %8.0f %8.0f\n", row.name, row.s.P50, row.s.P95, row.s.P99, row.s.Max)
	}
	verdict := "yes"
	if !r.keepingUp() {
		verdict = "no (latency grows: backlog)"
	}
	fmt.Fprintf(w, "  end-to-end p50, first fifth → last fifth: %.0f ms → %.0f ms; keeping up: %s\n",
		r.firstFifthP50, r.lastFifthP50, verdict)
	fmt.Fprintf(w, "  missing mails %d, duplicate mails %d (both must be 0)\n", r.missing, r.duplicates)
	fmt.Fprintf(w, "  jobs without exactly one result %d, without exactly one intent %d, results other than image_pull_failed %d, deliveries not sent %d\n",
		r.resultsNotOne, r.intentsNotOne, r.unexpectedResults, r.notSent)
	if r.rtmJobs > 0 {
		fmt.Fprintf(w, "  Runtime Manager: mean start job %.0f ms (take → outcome recorded) over %d jobs\n",
			1000*r.rtmJobSeconds/float64(r.rtmJobs), r.rtmJobs)
	}
	r.cpu.print(w, len(r.res.outcomes))
	fmt.Fprintf(w, "  memory (RSS, MiB)   first      mid     last      max  samples\n")
	for _, st := range r.sampler.Summarize() {
		fmt.Fprintf(w, "  %-14s %8.1f %8.1f %8.1f %8.1f %8d\n", st.Name, mib(st.First), mib(st.Mid), mib(st.Last), mib(st.Max), st.Count)
	}
	for _, err := range r.sampler.Errors() {
		fmt.Fprintf(w, "  rss: %v\n", err)
	}
	fmt.Fprintf(w, "\n| rate | duration | jobs/s offered | mails/s sent | RTM results/s | end-to-end p50 / p95 / p99 / max | job → intent p50 / p99 | intent → sent p50 / p99 | missing | duplicate |\n")
	fmt.Fprintf(w, "| %g/s | %s | %.1f | %.1f | %.1f | %s / %s / %s / %s | %s / %s | %s / %s | %d | %d |\n\n",
		o.rate, o.duration, r.offeredPerSec, r.mailsPerSec, r.resultsPerSec,
		ms(r.e2e.P50), ms(r.e2e.P95), ms(r.e2e.P99), ms(r.e2e.Max),
		ms(r.jobToIntent.P50), ms(r.jobToIntent.P99), ms(r.intentToSent.P50), ms(r.intentToSent.P99), r.missing, r.duplicates)
}

func concurrencyText(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// ms renders a latency for the Markdown row: ms below 10 s, else seconds.
func ms(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v >= 10_000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// write writes the CSV and SVG files into dir.
func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{
		{"pipeline-latency.csv", r.writeLatencyCSV},
		{"pipeline-latency.svg", r.writeLatencySVG},
		{"pipeline-memory.csv", r.writeMemoryCSV},
		{"pipeline-memory.svg", r.writeMemorySVG},
	} {
		path := filepath.Join(dir, f.name)
		if err := writeFile(path, f.write); err != nil {
			return err
		}
		say("wrote %s", path)
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeLatencyCSV writes one row per job, warm-up included, with what
// became of it; the latency columns are empty when the mail never came.
func (r *report) writeLatencyCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{
		"job", "game_id", "phase", "published_at_ms", "job_entry_id", "result_entry_id", "error_code",
		"intent_entry_id", "delivery_id", "status", "sent_at_ms",
		"job_to_result_ms", "job_to_intent_ms", "intent_to_sent_ms", "end_to_end_ms",
		"results", "intents", "deliveries",
	})
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, o := range r.res.outcomes {
		phase := "measured"
		if o.warm {
			phase = "warmup"
		}
		pub := millis(o.publishedAt)
		row := []string{strconv.Itoa(o.n), o.gameID, phase, f(pub), o.entryID, "", "", "", "", "", "", "", "", "", "",
			strconv.Itoa(len(o.results)), strconv.Itoa(len(o.intents)), strconv.Itoa(len(o.deliveries))}
		if len(o.results) > 0 {
			row[5], row[6] = o.results[0].id, o.results[0].fields["error_code"]
			row[11] = f(float64(o.results[0].ms) - pub)
		}
		if len(o.intents) > 0 {
			row[7] = o.intents[0].id
			row[12] = f(float64(o.intents[0].ms) - pub)
		}
		if len(o.deliveries) > 0 {
			d := o.deliveries[0]
			row[8], row[9] = d.DeliveryID, d.Status
			if d.SentAtMS != nil {
				row[10] = strconv.FormatInt(*d.SentAtMS, 10)
				row[14] = f(float64(*d.SentAtMS) - pub)
				if len(o.intents) > 0 {
					row[13] = f(float64(*d.SentAtMS - o.intents[0].ms))
				}
			}
		}
		_ = cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// writeLatencySVG plots each measured mail's end-to-end latency against
// when its job was published, with the p99 of a trailing 5 s window.
func (r *report) writeLatencySVG(w io.Writer) error {
	var xs, ys []float64
	if len(r.samples) > 0 {
		origin := r.samples[0].published
		for _, s := range r.samples {
			xs = append(xs, (s.published-origin)/1000)
			ys = append(ys, s.e2e)
		}
	}
	rx, ry := quantile.Rolling(xs, ys, 5, 1, 0.99)
	o := r.opts
	chart := svgplot.Chart{
		Title: fmt.Sprintf("Start job → admin mail sent: %g jobs/s for %s", o.rate, o.duration),
		Subtitle: fmt.Sprintf("%d mails; p50 %s, p95 %s, p99 %s, max %s; %d missing, %d duplicate; RTMANAGER_JOB_CONCURRENCY %s",
			len(r.samples), ms(r.e2e.P50), ms(r.e2e.P95), ms(r.e2e.P99), ms(r.e2e.Max), r.missing, r.duplicates,
			concurrencyText(o.rtmConcurrency)),
		XLabel: "seconds since the first measured job was published",
		YLabel: "end-to-end latency (ms)",
		Series: []svgplot.Series{
			{Name: "one mail", Kind: svgplot.Dots, X: xs, Y: ys, Color: "#1f77b4"},
			{Name: "p99, trailing 5 s", Kind: svgplot.Line, X: rx, Y: ry, Color: "#d62728", Width: 2},
		},
	}
	return chart.Render(w)
}

func (r *report) writeMemoryCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seconds", "service", "rss_kib"})
	samples := r.sampler.Samples()
	if len(samples) > 0 {
		origin := samples[0].At
		for _, s := range samples {
			_ = cw.Write([]string{strconv.FormatFloat(s.At.Sub(origin).Seconds(), 'f', 1, 64), s.Name, strconv.FormatInt(s.KiB, 10)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeMemorySVG plots each service's RSS over the run.
func (r *report) writeMemorySVG(w io.Writer) error {
	samples := r.sampler.Samples()
	var series []svgplot.Series
	var parts []string
	for _, st := range r.sampler.Summarize() {
		s := svgplot.Series{Name: st.Name, Kind: svgplot.Line, Width: 2}
		for _, x := range samples {
			if x.Name == st.Name {
				s.X = append(s.X, x.At.Sub(samples[0].At).Seconds())
				s.Y = append(s.Y, mib(x.KiB))
			}
		}
		series = append(series, s)
		parts = append(parts, fmt.Sprintf("%s %.0f→%.0f→%.0f (max %.0f)", st.Name, mib(st.First), mib(st.Mid), mib(st.Last), mib(st.Max)))
	}
	slices.Sort(parts)
	o := r.opts
	chart := svgplot.Chart{
		Title:    fmt.Sprintf("Service memory (RSS) under %g jobs/s for %s", o.rate, o.duration+o.warmup),
		Subtitle: "MiB first→halfway→last: " + strings.Join(parts, "; "),
		XLabel:   fmt.Sprintf("seconds since the load began (sampled every %s)", o.memInterval),
		YLabel:   "RSS (MiB)",
		Series:   series,
	}
	return chart.Render(w)
}
