package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeResults makes runs of every variant at each n: the reader keeps 200 B per object, the
// informer 5,000 B; the reader on JSON is the reader with a shorter sync; the informer on JSON
// keeps 5,100 B. withExtra adds those last two variants.
func fakeResults(ns []int, runs int, withExtra bool) []Result {
	var out []Result
	for _, n := range ns {
		for run := 1; run <= runs; run++ {
			objects := n + 400
			base := uint64(2 * mib)
			mk := func(variant string, perObject uint64, sync float64) Result {
				return Result{
					Variant: variant, N: n, Run: run, Objects: objects,
					SyncSeconds: sync + float64(run)/100, HeapBaseline: base,
					HeapPeakSync: base + 3*perObject*uint64(objects), HeapSynced: base + perObject*uint64(objects),
					ChurnWritten: 5000, ChurnSeen: 5000, ChurnRate: 500, ChurnCPUSeconds: 1,
					LagP50Ms: 3, LagP99Ms: 40 + float64(run),
				}
			}
			reader := mk(VariantReader, 200, 0.5)
			informer := mk(VariantInformer, 5000, 0.6)
			informer.RelistEntries = objects
			out = append(out, reader, informer)
			if withExtra {
				out = append(out, mk(VariantReaderJSON, 180, 0.3), mk(VariantInformerJSON, 5100, 1.5))
			}
		}
	}
	return out
}

func TestSummarizeTakesMedians(t *testing.T) {
	tab := Summarize(fakeResults([]int{1000, 10000}, 3, true))
	if got, want := tab.Ns(), []int{1000, 10000}; !equalInts(got, want) {
		t.Fatalf("Ns() = %v, want %v", got, want)
	}
	if len(tab.Rows) != 2*len(Metrics) {
		t.Fatalf("%d rows, want %d", len(tab.Rows), 2*len(Metrics))
	}
	r, ok := tab.Get(10000, "sync_s")
	if !ok {
		t.Fatal("no sync_s row at 10000")
	}
	if !near(r.Reader, 0.52) || !near(r.Informer, 0.62) || !near(r.ReaderJSON, 0.32) || !near(r.InformerJSON, 1.52) {
		t.Errorf("sync medians = %v, %v, %v, %v; want 0.52, 0.62, 0.32, 1.52", r.Reader, r.Informer, r.ReaderJSON, r.InformerJSON)
	}
	p, _ := tab.Get(10000, "bytes_per_object")
	if !near(p.Reader, 200) || !near(p.Informer, 5000) || !near(p.Ratio(), 0.04) {
		t.Errorf("bytes per object = %v / %v (ratio %v), want 200 / 5000 (0.04)", p.Reader, p.Informer, p.Ratio())
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Summarize(fakeResults([]int{1000, 30000}, 3, true)).Markdown(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if want := 2 + 2*len(Metrics); len(lines) != want {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), want, b.String())
	}
	if !strings.HasPrefix(lines[0], "| N pods | metric | reader | informer | reader / informer | reader, JSON | informer, JSON |") {
		t.Errorf("header %q", lines[0])
	}
	cols := strings.Count(lines[0], "|")
	for i, l := range lines {
		if strings.Count(l, "|") != cols {
			t.Errorf("line %d has %d bars, header %d: %q", i, strings.Count(l, "|"), cols, l)
		}
	}
	for _, want := range []string{
		"| 30,000 | heap per object once synced (B) | 200 | 5,000 | 0.04 | 180 | 5,100 |",
		"| 1,000 | objects in the initial state | 1,400 | 1,400 | 1.00 | 1,400 | 1,400 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}

func TestMarkdownWithoutExtraVariants(t *testing.T) {
	var b bytes.Buffer
	if err := Summarize(fakeResults([]int{1000}, 1, false)).Markdown(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "protobuf") || strings.Contains(b.String(), "JSON") {
		t.Errorf("a JSON column without such runs:\n%s", b.String())
	}
}

func TestCSV(t *testing.T) {
	tab := Summarize(fakeResults([]int{1000, 10000, 30000}, 2, true))
	var b bytes.Buffer
	if err := tab.CSV(&b); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if len(records) != 1+3*len(Metrics) {
		t.Fatalf("%d records, want %d", len(records), 1+3*len(Metrics))
	}
	if got := strings.Join(records[0], ","); got != "n,metric,unit,reader,informer,ratio,reader_json,informer_json,informer_stripped" {
		t.Errorf("header %q", got)
	}
	for _, rec := range records[1:] {
		if _, err := strconv.Atoi(rec[0]); err != nil {
			t.Errorf("n %q: %v", rec[0], err)
		}
		for _, f := range rec[3:] {
			if _, err := strconv.ParseFloat(f, 64); f != "" && err != nil {
				t.Errorf("value %q in %v: %v", f, rec, err)
			}
		}
	}
}

// checkSVG parses an SVG document with encoding/xml and returns how many of each element it has.
func checkSVG(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	counts := map[string]int{}
	depth, root := 0, ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, doc)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			seen := map[xml.Name]bool{}
			for _, a := range el.Attr {
				if seen[a.Name] {
					t.Errorf("<%s> repeats attribute %s (not well-formed XML)", el.Name.Local, a.Name.Local)
				}
				seen[a.Name] = true
			}
			if depth == 0 {
				root = el.Name.Local
				if el.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", el.Name.Space)
				}
			}
			depth++
			counts[el.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	if root != "svg" || depth != 0 {
		t.Fatalf("root %q, final depth %d", root, depth)
	}
	return counts
}

func TestSVGWellFormed(t *testing.T) {
	tests := []struct {
		name      string
		results   []Result
		polylines int
	}{
		{"three N, four variants", fakeResults([]int{1000, 10000, 30000}, 3, true), 8},
		{"two variants", fakeResults([]int{1000, 10000}, 1, false), 4},
		{"one N", fakeResults([]int{500}, 1, true), 8},
		{"no results", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Summarize(tt.results).SVG(&b); err != nil {
				t.Fatal(err)
			}
			counts := checkSVG(t, b.Bytes())
			if counts["polyline"] != tt.polylines {
				t.Errorf("%d polylines, want %d", counts["polyline"], tt.polylines)
			}
			if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
				t.Errorf("SVG holds NaN or Inf:\n%s", b.String())
			}
		})
	}
}

func TestTargets(t *testing.T) {
	met := func(targets []Target) map[string]bool {
		m := map[string]bool{}
		for _, tg := range targets {
			m[strings.SplitN(tg.Name, ":", 2)[0]] = tg.Met
		}
		return m
	}
	results := fakeResults([]int{1000, 10000, 30000}, 3, true)
	got := met(Summarize(results).Targets())
	for name, want := range map[string]bool{
		"heap once synced at 10,000 pods":                      true,
		"reader heap flat per object (N >= 10,000 within 25%)": true,
		"time to sync":                                       true,
		"reader delivery lag p99 < 100 ms":                   true,
		"quiet relist delivers 0 entries (every reader run)": true,
	} {
		if got[name] != want {
			t.Errorf("%q met = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}

	for i := range results {
		if results[i].Variant == VariantReader && results[i].N == 30000 {
			results[i].SyncSeconds = 10 // slower than the informer
			results[i].LagP99Ms = 150
			if results[i].Run == 2 {
				results[i].RelistEntries = 1
			}
		}
	}
	got = met(Summarize(results).Targets())
	for _, name := range []string{"time to sync", "reader delivery lag p99 < 100 ms", "quiet relist delivers 0 entries (every reader run)"} {
		if got[name] {
			t.Errorf("%q met, want missed", name)
		}
	}

	if r, i, ok := Summarize(fakeResults([]int{1000, 10000, 30000}, 1, false)).marginal(); !ok || !near(r, 200) || !near(i, 5000) {
		t.Errorf("marginal = %v, %v, %v; want 200, 5000", r, i, ok)
	}

	none := Summarize(fakeResults([]int{1000}, 1, false)).Targets()
	if got := met(none); got["heap once synced at 10,000 pods"] {
		t.Error("heap target met without a run at 10,000")
	}
	var b bytes.Buffer
	if err := WriteTargets(&b, none); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "**missed** (not measured)") {
		t.Errorf("targets:\n%s", b.String())
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		v    float64
		d    int
		want string
	}{
		{0, 0, "0"},
		{999, 0, "999"},
		{1000, 0, "1,000"},
		{1234567.891, 2, "1,234,567.89"},
		{-12345, 1, "-12,345.0"},
		{math.NaN(), 2, "–"},
		{math.Inf(1), 0, "–"},
	}
	for _, tt := range tests {
		if got := format(tt.v, tt.d); got != tt.want {
			t.Errorf("format(%v, %d) = %q, want %q", tt.v, tt.d, got, tt.want)
		}
	}
	if got := formatRatio(0.004); got != "0.0040" {
		t.Errorf("formatRatio(0.004) = %q", got)
	}
	if got := formatRatio(math.NaN()); got != "–" {
		t.Errorf("formatRatio(NaN) = %q", got)
	}
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ max, want float64 }{{30000, 5000}, {100, 20}, {7, 2}, {0.3, 0.05}, {0, 1}} {
		if got := niceStep(c.max, 6); !near(got, c.want) {
			t.Errorf("niceStep(%v) = %v, want %v", c.max, got, c.want)
		}
	}
}

func TestParseInts(t *testing.T) {
	got, err := parseInts("1000, 10000,30000")
	if err != nil || !equalInts(got, []int{1000, 10000, 30000}) {
		t.Errorf("parseInts = %v, %v", got, err)
	}
	for _, bad := range []string{"", "10,x", "0", "-5"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q) did not fail", bad)
		}
	}
}

func TestProfilePath(t *testing.T) {
	if got := profilePath("out/cpu.pprof", VariantReader, 10000, 2); got != "out/cpu-reader-n10000-r2.pprof" {
		t.Errorf("got %q", got)
	}
	if got := profilePath("mem", VariantReaderJSON, 1000, 1); got != "mem-reader-json-n1000-r1" {
		t.Errorf("got %q", got)
	}
}

func TestLagRecorder(t *testing.T) {
	var l lagRecorder
	now := time.Unix(100, 0)
	at := func(d time.Duration) map[string]string {
		return map[string]string{writtenAtAnnotation: strconv.FormatInt(now.Add(-d).UnixNano(), 10)}
	}
	l.observe(at(time.Millisecond), now) // not recording yet
	l.start(now.Add(-time.Second).UnixNano(), 4)
	l.observe(at(30*time.Millisecond), now)
	l.observe(at(10*time.Millisecond), now)
	l.observe(at(2*time.Second), now)                                 // written before the churn began
	l.observe(map[string]string{writtenAtAnnotation: "garbage"}, now) // not a time
	l.observe(nil, now)
	if got := l.stop(); len(got) != 2 || !near(got[0], 10) || !near(got[1], 30) {
		t.Errorf("lags %v, want [10 30]", got)
	}
	l.observe(at(time.Millisecond), now) // stopped
	if got := len(l.lags); got != 0 {
		t.Errorf("%d lags recorded after stop", got)
	}
}

func TestLagRecorderWait(t *testing.T) {
	var l lagRecorder
	l.wait(context.Background(), 1, time.Hour) // not started: returns at once
	now := time.Now()
	l.start(now.Add(-time.Second).UnixNano(), 3)
	written := map[string]string{writtenAtAnnotation: strconv.FormatInt(now.UnixNano(), 10)}
	l.observe(written, now)
	start := time.Now()
	l.wait(context.Background(), 3, 20*time.Millisecond) // two short: times out
	if time.Since(start) < 20*time.Millisecond {
		t.Error("wait returned before its limit with too few changes")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.wait(context.Background(), 3, time.Hour)
	}()
	l.observe(written, now)
	l.observe(written, now)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return once the changes were seen")
	}
}

func TestLagRecorderStopped(t *testing.T) {
	var l lagRecorder
	now := time.Unix(100, 0)
	at := func(d time.Duration) map[string]string {
		return map[string]string{writtenAtAnnotation: strconv.FormatInt(now.Add(-d).UnixNano(), 10)}
	}
	l.start(now.Add(-time.Second).UnixNano(), 1)
	l.observe(at(time.Millisecond), now)
	if got := l.stop(); len(got) != 1 {
		t.Errorf("%d lags before stop, want 1", len(got))
	}
	l.observe(at(time.Millisecond), now) // stopped
	if got := len(l.lags); got != 0 {
		t.Errorf("%d lags recorded after stop", got)
	}
}

func TestExpect(t *testing.T) {
	in := bufio.NewScanner(strings.NewReader("churn 12 500\nchurned x\nrelist\n"))
	args, err := expect(in, cmdChurn, 2)
	if err != nil || len(args) != 2 || args[0] != 12 || args[1] != 500 {
		t.Errorf("churn: %v, %v", args, err)
	}
	if _, err := expect(in, cmdChurned, 1); err == nil {
		t.Error("a bad argument was accepted")
	}
	if _, err := expect(in, cmdChurned, 1); err == nil {
		t.Error("the wrong command was accepted")
	}
	if _, err := expect(in, cmdRelist, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("at EOF: %v", err)
	}
}

func TestPayloadAndWant(t *testing.T) {
	if p := payload(7); len(p) != payloadSize || p == payload(8) {
		t.Errorf("payload: %d bytes, same as the next: %v", len(p), p == payload(8))
	}
	if got := want(1000); got.services != 10 || got.pods != 1000 {
		t.Errorf("want(1000) = %+v", got)
	}
	if got := want(30000); got.roles != 300 {
		t.Errorf("want(30000) = %+v", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
