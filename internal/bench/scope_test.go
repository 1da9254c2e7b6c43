package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
)

// exitCase is a command line, the exit code Main returns for it and what its stderr says.
type exitCase struct {
	args []string
	code int
	say  string // in stderr
}

// checkExits runs Main on each case's command line and checks its exit code and stderr.
func checkExits(t *testing.T, cases []exitCase) {
	t.Helper()
	for _, tt := range cases {
		var stdout, stderr bytes.Buffer
		if got := Main(tt.args, &stdout, &stderr); got != tt.code || !strings.Contains(stderr.String(), tt.say) {
			t.Errorf("Main(%q) = %d, want %d; stderr (want %q):\n%s", tt.args, got, tt.code, tt.say, stderr.String())
		}
	}
}

func TestScopeFlags(t *testing.T) {
	checkExits(t, []exitCase{
		{[]string{"-suite", "nope"}, 2, `-suite "nope"`},
		{[]string{"-suite", "scope", "-rate", "100"}, 2, "-rate: only for -suite default"},
		{[]string{"-suite", "scope", "-resync", "5s", "-reader-json=false"}, 2, "-reader-json, -resync"},
		{[]string{"-suite", "scope", "-n", "10000,1000"}, 2, "increasing"},
		{[]string{"-suite", "scope", "-n", "1000,x"}, 2, "-n"},
		{[]string{"-suite", "scope", "-runs", "3,0"}, 2, "-runs"},
		{[]string{"-suite", "scope", "-workers", "0"}, 2, "-workers"},
		{[]string{"-suite", "scope", "-report", filepath.Join(t.TempDir(), "missing.jsonl")}, 1, "open runs"},
	})
	var stderr bytes.Buffer
	Main([]string{"-help"}, &bytes.Buffer{}, &stderr)
	if !strings.Contains(stderr.String(), "-suite") {
		t.Errorf("-help lacks -suite:\n%s", stderr.String())
	}
}

// checkLayout checks the layout of a sync suite whose variants own reports: every variant is the
// suite's alone, a sync suite's child and has a column name; every ratio is of two of its variants
// and every section's metric is one of the layout's rows.
func checkLayout(t *testing.T, l *syncLayout, own func(string) bool) {
	t.Helper()
	suites := []func(string) bool{isScopeVariant, isResourcesVariant, isRestartVariant}
	for _, v := range l.variants {
		claimed := 0
		for _, is := range suites {
			if is(v) {
				claimed++
			}
		}
		if !own(v) || claimed != 1 || !isSyncVariant(v) || v == ModeReader || v == ModeInformer {
			t.Errorf("variant %q: the suite's %v, claimed by %d suites, a sync variant %v", v, own(v), claimed, isSyncVariant(v))
		}
		if l.labels[v] == "" {
			t.Errorf("%s has no column name", v)
		}
	}
	keys := map[string]bool{}
	for _, m := range l.rowMetrics() {
		if keys[m.Key] {
			t.Errorf("metric %s twice", m.Key)
		}
		keys[m.Key] = true
	}
	for _, s := range l.sections {
		for _, r := range s.Ratios {
			if !own(r.Num) || !own(r.Den) {
				t.Errorf("section %q: ratio %s of an unknown variant", s.Title, r.Key())
			}
		}
		for _, k := range s.Metrics {
			if !keys[k] {
				t.Errorf("section %q: no metric %s", s.Title, k)
			}
		}
	}
}

func TestScopeVariants(t *testing.T) {
	if len(scopeVariants) != 7 {
		t.Errorf("%d scope variants", len(scopeVariants))
	}
	checkLayout(t, &scopeLayout, isScopeVariant)
	if isScopeVariant(ModeReader) || !isScopeVariant(VariantFloor) {
		t.Error("isScopeVariant")
	}
}

func TestNodes(t *testing.T) {
	for _, n := range []int{1, 7, 8, 99, 100, 107, 108, 1000, 1007, 10000, 30000} {
		want := 0
		for i := range n {
			if nodeName(i) == scopeNode {
				want++
			}
		}
		if got := podsOnNode(n, scopeNodeIndex); got != want {
			t.Errorf("podsOnNode(%d) = %d, want %d", n, got, want)
		}
	}
	if got := expectedObjects(VariantInformerNode, 10000); got != 100 {
		t.Errorf("per-node pods at 10,000 = %d, want 100", got)
	}
	if got := expectedObjects(VariantFloor, 10000); got != 10000 {
		t.Errorf("floor objects at 10,000 = %d", got)
	}
	p := newScopePod(1207)
	if p.Spec.NodeName != scopeNode || p.Name != podName(1207) || p.Namespace != namespaceName(1207) {
		t.Errorf("pod 1207: %s/%s on %q", p.Namespace, p.Name, p.Spec.NodeName)
	}
	if scopeFieldSelector != "spec.nodeName=bench-node-07" {
		t.Errorf("field selector %q", scopeFieldSelector)
	}
}

// checkMarkdown renders tab's markdown, checks that it holds every one of wants and that each table
// row has as many cells as its header, and returns it.
func checkMarkdown(t *testing.T, tab ScopeTable, wants ...string) string {
	t.Helper()
	var b bytes.Buffer
	if err := tab.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	var header int
	for line := range strings.SplitSeq(md, "\n") {
		switch {
		case strings.HasPrefix(line, "| N "):
			header = strings.Count(line, "|")
		case strings.HasPrefix(line, "|"):
			if got := strings.Count(line, "|"); got != header {
				t.Errorf("%d cells, header %d: %s", got, header, line)
			}
		}
	}
	return md
}

// fakeScopeResults makes runs of every scope variant at each n (fakeSyncResults).
func fakeScopeResults(ns []int, runs int) []ScopeResult {
	scale := map[string]float64{ // seconds per 10,000 pods; bytes are 2,000 times as many KiB
		VariantReaderNode: 0.02, VariantInformerNode: 0.03, VariantReaderPods: 0.5, VariantReaderMetadata: 0.2,
		VariantInformerMetadata: 0.3, VariantInformerPods: 0.6, VariantFloor: 0.25,
	}
	return fakeSyncResults(&scopeSuite, scale, ns, runs)
}

// fakeSyncResults makes runs of every variant of s at each n: sync time, CPU and bytes are
// per-variant multiples of n (scale: seconds per 10,000 objects), the run number added to the time
// so that medians are checkable.
func fakeSyncResults(suite *syncSuite, scale map[string]float64, ns []int, runs int) []ScopeResult {
	var out []ScopeResult
	for _, n := range ns {
		for run := 1; run <= runs; run++ {
			for _, v := range suite.variants {
				s := scale[v] * float64(n) / 10000
				out = append(out, ScopeResult{
					Variant: v, N: n, Run: run, Objects: suite.expected(v, n),
					SyncSeconds: s + float64(run)/1000, SyncCPU: s / 2, BytesReceived: int64(s * 2000 * kib), BodyBytes: int64(s * 6000 * kib),
					HeapBaseline: mib, HeapPeakSync: 3 * mib, HeapSynced: 2 * mib,
				})
			}
		}
	}
	return out
}

func TestSummarizeScope(t *testing.T) {
	tab := SummarizeScope(fakeScopeResults([]int{1000, 10000}, 3))
	if got := tab.Ns(); !equalInts(got, []int{1000, 10000}) {
		t.Fatalf("Ns() = %v", got)
	}
	if len(tab.Rows) != 2*len(ScopeMetrics) {
		t.Fatalf("%d rows, want %d", len(tab.Rows), 2*len(ScopeMetrics))
	}
	r, ok := tab.Get(10000, "sync_s")
	if !ok {
		t.Fatal("no sync_s at 10,000")
	}
	if !near(r.Value(VariantReaderMetadata), 0.202) || !near(r.Value(VariantFloor), 0.252) {
		t.Errorf("sync medians %v, %v; want 0.202, 0.252", r.Value(VariantReaderMetadata), r.Value(VariantFloor))
	}
	if !near(r.Ratio(VariantReaderPods, VariantFloor), 0.502/0.252) {
		t.Errorf("reader / floor = %v", r.Ratio(VariantReaderPods, VariantFloor))
	}
	o, _ := tab.Get(10000, "objects")
	if o.Value(VariantReaderNode) != 100 || o.Value(VariantInformerPods) != 10000 {
		t.Errorf("objects %v", o.Values)
	}
	b, _ := tab.Get(1000, "received_kib")
	if !near(b.Value(VariantInformerPods), 0.06*2000) {
		t.Errorf("informer KiB at 1,000 = %v, want 120", b.Value(VariantInformerPods))
	}
	if !math.IsNaN(SummarizeScope(fakeScopeResults([]int{1000}, 1)[:1]).Rows[0].Value(VariantFloor)) {
		t.Error("a variant without runs has a value")
	}
	if got := tab.runsNote(); got != "3 runs" {
		t.Errorf("runsNote = %q", got)
	}
	if got := SummarizeScope(fakeScopeResults([]int{1000}, 1)[1:]).runsNote(); got != "1 run" {
		t.Errorf("runsNote = %q", got)
	}
}

func TestScopeMarkdown(t *testing.T) {
	md := checkMarkdown(t, SummarizeScope(fakeScopeResults([]int{1000, 10000}, 3)),
		"medians of 3 runs",
		"| N pods | metric | reader, one node | informer, one node | reader | reader, one node / reader | reader, one node / informer, one node |",
		"| N pods | metric | reader, metadata | reader | metadata informer | informer | reader, metadata / informer |",
		"| N pods | metric | floor | reader | informer | reader / floor | informer / floor |",
		"| 10,000 | objects in the initial state | 100 | 100 | 10,000 | 0.01 | 1.00 |",
		"| 10,000 | time to initial sync (s) | 0.252 | 0.502 | 0.602 | 1.99 | 2.39 |",
	)
	// The floor's table has only its 5 metrics, at each N.
	floor := md[strings.Index(md, "### The floor"):]
	if got := strings.Count(floor, "\n| 1"); got != 2*5 {
		t.Errorf("floor table: %d rows, want 10:\n%s", got, floor)
	}
	if !strings.Contains(floor, "| 10,000 | response bodies read during sync (after gzip) (KiB) | 1,500 | 3,000 | 3,600 | 2.00 | 2.40 |") {
		t.Errorf("floor table:\n%s", floor)
	}
}

// csvRecords renders tab's CSV and parses it back.
func csvRecords(t *testing.T, tab ScopeTable) [][]string {
	t.Helper()
	var b bytes.Buffer
	if err := tab.CSV(&b); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return records
}

func TestScopeCSV(t *testing.T) {
	records := csvRecords(t, SummarizeScope(fakeScopeResults([]int{1000, 10000}, 3)))
	if len(records) != 1+2*len(ScopeMetrics) {
		t.Fatalf("%d records", len(records))
	}
	col := map[string]int{}
	for i, h := range records[0] {
		col[h] = i
	}
	if len(col) != len(records[0]) || len(col) != 3+len(scopeVariants)+len(scopeLayout.ratios()) {
		t.Fatalf("header %v", records[0])
	}
	for _, rec := range records[1:] {
		if rec[col["n"]] != "10000" || rec[col["metric"]] != "received_kib" {
			continue
		}
		meta, _ := strconv.ParseFloat(rec[col[VariantReaderMetadata]], 64)
		q, _ := strconv.ParseFloat(rec[col["reader-metadata/informer-pods"]], 64)
		if !near(meta, 400) || !near(q, 400.0/1200) || rec[col["unit"]] != "KiB" {
			t.Errorf("received_kib at 10,000: %v", rec)
		}
		return
	}
	t.Error("no received_kib row at 10,000")
}

func TestScopeTargets(t *testing.T) {
	get := func(tgs []Target) (met []bool, details string) {
		for _, tg := range tgs {
			met = append(met, tg.Met)
			details += tg.Detail + "\n"
		}
		return met, details
	}
	// Metadata reader: 0.202 s vs 0.602 (0.34 <= 0.4); 400 vs 1,200 KiB (1/3 exactly).
	met, details := get(SummarizeScope(fakeScopeResults([]int{1000, 10000}, 3)).Targets())
	if len(met) != 2 || !met[0] || !met[1] {
		t.Errorf("met %v:\n%s", met, details)
	}
	if !strings.Contains(details, "0.202 vs 0.602 s at 10,000 (0.34)") || !strings.Contains(details, "at 1,000") {
		t.Errorf("details:\n%s", details)
	}
	// Slower metadata reader: both missed.
	rs := fakeScopeResults([]int{10000}, 1)
	for i := range rs {
		if rs[i].Variant == VariantReaderMetadata {
			rs[i].SyncSeconds, rs[i].BytesReceived = 0.3, 500*kib
		}
	}
	if met, details := get(SummarizeScope(rs).Targets()); met[0] || met[1] {
		t.Errorf("met %v:\n%s", met, details)
	}
	// Without 10,000 pods: missed, not measured, with the ratios that were.
	met, details = get(SummarizeScope(fakeScopeResults([]int{1000}, 1)).Targets())
	if met[0] || met[1] || !strings.Contains(details, "not measured at 10,000 pods; ") || !strings.Contains(details, "at 1,000") {
		t.Errorf("met %v:\n%s", met, details)
	}
}

func TestSyncReportFiles(t *testing.T) {
	for _, tc := range []struct {
		suite   *syncSuite
		results []ScopeResult
		want    []string // in stdout
		targets bool
	}{
		{&scopeSuite, fakeScopeResults([]int{1000, 10000}, 2), []string{"### The floor"}, true},
		{&resourcesSuite, fakeResourcesResults([]int{1000, 10000}, 2), []string{"### Custom resources", "| 10,000 | objects in the initial state |"}, false},
		{newRestartSuite(), fakeRestartResults([]int{10000, 30000}, 2), []string{"### Warm restart", "### A complete state diffed", "### Saving the checkpoint", "CPU of a quiet relist <= 1.5 x the floor's"}, true},
	} {
		dir := t.TempDir()
		runs := filepath.Join(dir, tc.suite.runsFile)
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for _, r := range tc.results {
			if err := enc.Encode(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(runs, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		out := filepath.Join(dir, "out")
		if code := Main([]string{"-suite", tc.suite.name, "-report", runs, "-out", out}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.suite.name, code, stderr.String())
		}
		for _, name := range []string{tc.suite.markdownFile, tc.suite.csvFile} {
			if _, err := os.Stat(filepath.Join(out, name)); err != nil {
				t.Error(err)
			}
		}
		for _, want := range tc.want {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%s: stdout lacks %q:\n%s", tc.suite.name, want, stdout.String())
			}
		}
		if got := strings.Contains(stdout.String(), "Targets:"); got != tc.targets {
			t.Errorf("%s: targets shown: %v, want %v", tc.suite.name, got, tc.targets)
		}
	}

	// The default suite's runs are not scope runs.
	var def bytes.Buffer
	if err := json.NewEncoder(&def).Encode(fakeResults([]int{1000}, 1, false)[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeRuns(&def, true, scopeSuite.check); err == nil {
		t.Error("a default suite's result was read as a scope result")
	}
	if _, err := decodeRuns(strings.NewReader(`{"variant":"reader","n":1}`), true, scopeSuite.check); err == nil {
		t.Error("a default suite's variant was accepted")
	}
}

// A child of a sync suite that cannot start reports one error message on its stdout, and nothing else.
func TestScopeChildReportsError(t *testing.T) {
	for _, cfg := range []childConfig{
		{mode: VariantFloor, kubeconfig: filepath.Join(t.TempDir(), "missing")},
		{mode: VariantResourcesReader, kubeconfig: filepath.Join(t.TempDir(), "missing")},
		{mode: "nope", kubeconfig: writeTestKubeconfig(t)},
	} {
		var out bytes.Buffer
		if err := runScopeChild(context.Background(), cfg, &out); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 1 {
			t.Fatalf("child wrote %d lines:\n%s", len(lines), out.String())
		}
		var m message
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
			t.Fatal(err)
		}
		if m.Phase != phaseError || m.Scope != nil || m.Error == "" {
			t.Errorf("%s: message %+v", cfg.mode, m)
		}
	}
}

// writeTestKubeconfig writes a kubeconfig for a server that is never contacted.
func writeTestKubeconfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestByteCounter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	defer ln.Close()
	payload := bytes.Repeat([]byte("x"), 100_000)
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		if _, err := io.ReadFull(c, make([]byte, len("not counted"))); err != nil {
			done <- err
			return
		}
		_, err = c.Write(payload)
		done <- err
	}()
	bc := newByteCounter()
	conn, err := bc.dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("not counted")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != len(payload) || bc.received() != int64(len(payload)) {
		t.Errorf("read %d bytes, counted %d, want %d", len(got), bc.received(), len(payload))
	}
}

// The body counter counts a gzip response's bytes after the transport undid the gzip.
func TestBodyCounter(t *testing.T) {
	plain := bytes.Repeat([]byte("watch event "), 10_000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding %q", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(gz.Bytes())
	}))
	defer srv.Close()
	bc := &bodyCounter{}
	wire := newByteCounter()
	client := &http.Client{Transport: bc.wrap(&http.Transport{DialContext: wire.dial})}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) || bc.received() != int64(len(plain)) {
		t.Errorf("read %d bytes, counted %d, want %d", len(got), bc.received(), len(plain))
	}
	if w := wire.received(); w < int64(gz.Len()) || w > int64(gz.Len())+1024 {
		t.Errorf("wire: %d bytes, want the %d of gzip and the headers", w, gz.Len())
	}
}

// watchStream encodes events as a kube-apiserver sends a protobuf watch: each object embedded with
// the protobuf serializer ("k8s\0" and runtime.Unknown), see encodeWatch.
func watchStream(t *testing.T, events ...watch.Event) []byte {
	t.Helper()
	return encodeWatch(t, runtime.ContentTypeProtobuf, func(info runtime.SerializerInfo) runtime.Encoder {
		return scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion)
	}, events...)
}

// encodeWatch encodes events as a kube-apiserver sends a watch of mediaType: the serializers and
// framer of client-go's scheme for it, each object embedded with the encoder embedded returns in a
// metav1.WatchEvent.
func encodeWatch(t *testing.T, mediaType string, embedded func(runtime.SerializerInfo) runtime.Encoder, events ...watch.Event) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), mediaType)
	if !ok || info.StreamSerializer == nil {
		t.Fatalf("no %s stream serializer", mediaType)
	}
	var out bytes.Buffer
	enc := streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(&out), info.StreamSerializer.Serializer)
	embed := embedded(info)
	for _, ev := range events {
		raw, err := runtime.Encode(embed, ev.Object)
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(&metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

func bookmark(rv string, end bool) watch.Event {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}
	if end {
		p.Annotations = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
	}
	return watch.Event{Type: watch.Bookmark, Object: p}
}

func TestReadInitialEvents(t *testing.T) {
	var events []watch.Event
	for i := range 5 {
		events = append(events, watch.Event{Type: watch.Added, Object: newScopePod(i)})
	}
	events = append(events, bookmark("41", false)) // a progress bookmark: not the end
	for i := 5; i < 8; i++ {
		events = append(events, watch.Event{Type: watch.Added, Object: newScopePod(i)})
	}
	events = append(events, bookmark("42", true), watch.Event{Type: watch.Modified, Object: newScopePod(0)})
	stream := watchStream(t, events...)
	r := bytes.NewReader(stream)
	st, err := readInitialEvents(r)
	if err != nil {
		t.Fatal(err)
	}
	if st.added != 8 || st.bookmarks != 2 || st.frames != 10 || st.resourceVersion != "42" {
		t.Errorf("stats %+v, want 8 added, 2 bookmarks, 10 frames, resourceVersion 42", st)
	}
	if r.Len() == 0 {
		t.Error("read past the end bookmark")
	}

	cut := watchStream(t, events[:3]...)
	for name, tc := range map[string]struct {
		stream []byte
		want   string
	}{
		"ends early":    {cut, "ended after 3 events, before the initial-events-end bookmark"},
		"cut in frame":  {cut[:len(cut)-10], "read frame 3"},
		"json":          {[]byte(`{"type":"ADDED","object":{}}`), "not a protobuf watch stream"},
		"modified":      {watchStream(t, events[0], watch.Event{Type: watch.Modified, Object: newScopePod(0)}), `a "MODIFIED" event in frame 2`},
		"not a message": {[]byte{0, 0, 0, 3, 0xff, 0xff, 0xff}, "decode the envelope of frame 1"},
	} {
		if _, err := readInitialEvents(bytes.NewReader(tc.stream)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}

	gone := apierrors.NewResourceExpired("too old resource version")
	_, err = readInitialEvents(bytes.NewReader(watchStream(t, events[0], watch.Event{Type: watch.Error, Object: &gone.ErrStatus})))
	if !apierrors.IsResourceExpired(err) {
		t.Errorf("ERROR event: %v, want the server's 410", err)
	}
}

// The floor asks for what the reader's streams ask for.
func TestFloorListOptions(t *testing.T) {
	opts := floorListOptions()
	q, err := parameterCodec.EncodeParameters(&opts, corev1.SchemeGroupVersion)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true"} {
		if got := q.Get(k); got != v {
			t.Errorf("%s=%q, want %q (query %s)", k, got, v, q.Encode())
		}
	}
	if q.Has("resourceVersion") && q.Get("resourceVersion") != "" {
		t.Errorf("resourceVersion=%q", q.Get("resourceVersion"))
	}
}
