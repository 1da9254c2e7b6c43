package bench

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestRestartVariants(t *testing.T) {
	checkLayout(t, &restartLayout, isRestartVariant)
	if isRestartVariant(VariantReaderPods) || !isRestartVariant(VariantReaderWarm) {
		t.Error("isRestartVariant")
	}
	if s, ok := syncSuiteNamed(SuiteRestart); !ok || s.name != SuiteRestart || s.before == nil {
		t.Errorf("syncSuiteNamed(%q) = %v, %v", SuiteRestart, s, ok)
	}
}

// Each run's change set is size() pods updated and the next size() deleted, within the N pods, and
// the next run changes other pods.
func TestChangeSet(t *testing.T) {
	for _, n := range []int{100, 199, 1000, 1050, 10000, 30000} {
		seen := map[string]bool{}
		for run := 1; run <= 120; run++ {
			c := changeSet{n: n, run: run}
			uf, ut := c.updated()
			df, dt := c.deleted()
			if c.size() != n/100 || ut-uf != c.size() || dt-df != c.size() || ut != df || uf < 0 || dt > n {
				t.Fatalf("n=%d run %d: size %d, updated [%d, %d), deleted [%d, %d)", n, run, c.size(), uf, ut, df, dt)
			}
			if prev := (changeSet{n: n, run: run - 1}); run > 1 && n/(2*c.size()) > 1 && prev.start() == c.start() {
				t.Errorf("n=%d: runs %d and %d change the same pods", n, run-1, run)
			}
			if seen[c.value()] {
				t.Errorf("n=%d run %d: label value %q again", n, run, c.value())
			}
			seen[c.value()] = true
		}
	}
	// Runs go round the blocks: at 1,000 pods, 50 blocks of 20.
	if got := (changeSet{n: 1000, run: 51}).start(); got != 0 {
		t.Errorf("run 51 at 1,000 starts at %d, want 0", got)
	}
	if got := (changeSet{n: 1000, run: 2}).start(); got != 20 {
		t.Errorf("run 2 at 1,000 starts at %d, want 20", got)
	}
	// The label value differs across N for the same run: pods 0..99 are updated at 10,000 and again at 30,000.
	if (changeSet{n: 10000, run: 1}).value() == (changeSet{n: 30000, run: 1}).value() {
		t.Error("the same label value at two N: the second update would write nothing")
	}
}

func TestRestartExpected(t *testing.T) {
	for _, tc := range []struct {
		v             string
		n             int
		want, deletes int
	}{
		{VariantCheckpointSave, 10000, 10000, 0},
		{VariantReaderWarm, 10000, 100 + 2*100, 100}, // 100 updates; 100 deletes, each MODIFIED then DELETED
		{VariantReaderCold, 10000, 9900, 0},
		{VariantInformerRestart, 10000, 9900, 0},
		{VariantReaderWarm, 30000, 900, 300},
		{VariantReaderWarm, 1050, 30, 10},
		{VariantRestartFloor, 10000, 9900, 0},
		{VariantReaderRelist, 10000, 9900, 0},
		{VariantReaderExpired, 10000, 200, 100}, // 100 updates, 100 synthesized deletes
		{VariantReaderExpired, 30000, 600, 300},
	} {
		if got := restartExpected(tc.v, tc.n); got != tc.want {
			t.Errorf("restartExpected(%s, %d) = %d, want %d", tc.v, tc.n, got, tc.want)
		}
		if got := restartExpectedDeletes(tc.v, tc.n); got != tc.deletes {
			t.Errorf("restartExpectedDeletes(%s, %d) = %d, want %d", tc.v, tc.n, got, tc.deletes)
		}
	}
	s := newRestartSuite()
	res := ScopeResult{Variant: VariantReaderWarm, N: 10000, Objects: 300, Deletes: 100}
	if w, err := s.checkObjects(res); w != "" || err != nil {
		t.Errorf("exact: %q, %v", w, err)
	}
	res.Objects = 200 // as if a delete were one entry
	if _, err := s.checkObjects(res); err == nil || !strings.Contains(err.Error(), "200 objects once synced, want 300") {
		t.Errorf("200 entries: %v", err)
	}
	res.Objects, res.Deletes = 300, 99
	if _, err := s.checkObjects(res); err == nil || !strings.Contains(err.Error(), "99 of the 300 entries deletes, want 100") {
		t.Errorf("99 deletes: %v", err)
	}
	if _, err := s.checkObjects(ScopeResult{Variant: VariantInformerRestart, N: 10000, Objects: 9900}); err != nil {
		t.Errorf("informer: %v", err)
	}
}

func TestRestartFlags(t *testing.T) {
	checkExits(t, []exitCase{
		{[]string{"-suite", "restart", "-n", "50"}, 2, "-n: the restart suite needs at least 100 objects, got 50"},
		{[]string{"-suite", "restart", "-n", "1000,100"}, 2, "increasing"},
		{[]string{"-suite", "restart", "-rate", "100"}, 2, "-rate: only for -suite default (the restart suite"},
		{[]string{"-suite", "restart", "-runs", "0"}, 2, "-runs"},
	})
	s := newRestartSuite()
	if got := s.nsFlag("1000,10000,30000", false); got != "30000" {
		t.Errorf("-n not given: %q, want 30000", got)
	}
	if got := s.nsFlag("1000", true); got != "1000" {
		t.Errorf("-n 1000: %q", got)
	}
	if got := scopeSuite.nsFlag("1000,10000,30000", false); got != "1000,10000,30000" {
		t.Errorf("the scope suite's -n: %q", got)
	}
	var stderr bytes.Buffer
	Main([]string{"-help"}, &bytes.Buffer{}, &stderr)
	if !strings.Contains(stderr.String(), "restart (pods:") || strings.Contains(stderr.String(), "\n  -checkpoint") {
		t.Errorf("-help:\n%s", stderr.String())
	}
}

// fakeRestartResults makes runs of every restart variant at each n (fakeSyncResults), with the
// saving child's checkpoint (40 bytes per pod, 2 ms per 1,000 pods) and the warm reader's deletes.
func fakeRestartResults(ns []int, runs int) []ScopeResult {
	scale := map[string]float64{ // seconds per 10,000 pods
		VariantCheckpointSave: 0.8, VariantReaderWarm: 0.3, VariantReaderCold: 0.75, VariantInformerRestart: 0.9,
		VariantRestartFloor: 0.2, VariantReaderRelist: 0.75, VariantReaderExpired: 0.4,
	}
	s := newRestartSuite()
	out := fakeSyncResults(s, scale, ns, runs)
	for i := range out {
		r := &out[i]
		r.Deletes = s.expectedDeletes(r.Variant, r.N)
		switch r.Variant {
		case VariantCheckpointSave:
			r.CheckpointBytes, r.CheckpointSeconds = int64(40*r.N), float64(r.N)/1000*0.002
		case VariantReaderWarm:
			r.BytesReceived, r.BodyBytes = int64(r.Objects)*2*kib, int64(r.Objects)*2*kib
		case VariantReaderRelist:
			r.CompleteStates = 1
			r.RelistSeconds, r.RelistCPU = 0.5*float64(r.N)/10000, 0.25*float64(r.N)/10000
		default:
			r.CompleteStates = 1
		}
	}
	return out
}

func TestRestartMarkdown(t *testing.T) {
	md := checkMarkdown(t, SummarizeRestart(fakeRestartResults([]int{10000, 30000}, 3)),
		"Restart suite: medians of 3 runs per variant and N",
		"updates 1/100 of the pods (a label) and deletes as many (none created)")
	warm, rest, ok := strings.Cut(md[strings.Index(md, "### Warm restart"):], "### A complete state diffed")
	state, save, ok2 := strings.Cut(rest, "### Saving the checkpoint")
	if !ok || !ok2 {
		t.Fatalf("no table of the complete state or of the checkpoint:\n%s", md)
	}
	for table, wants := range map[string][]string{
		warm: {
			"### Warm restart against a cold start and an informer restart",
			"each delete 2: the apiserver sets the pod's deletionTimestamp",
			"| N pods | metric | reader, warm | reader, cold | informer restart | reader, warm / reader, cold | reader, warm / informer restart |",
			"| 10,000 | entries delivered (informer: objects in its store) | 300 | 9,900 | 9,900 | 0.03 | 0.03 |",
			"| 30,000 | entries that are deletes | 300 | 0 | – | – | – |",
			"| 10,000 | time to sync (WaitForSync / WaitForCacheSync) (s) | 0.302 | 0.752 | 0.902 | 0.40 | 0.33 |",
			"| 10,000 | complete-state requests (WatchList or paginated LIST) | 0 | 1 | 1 | 0.00 | 0.00 |",
		},
		state: {
			"| N pods | metric | floor | reader, relist | reader, warm after a 410 | reader, relist / floor | reader, warm after a 410 / floor |",
			"| 10,000 | entries delivered (informer: objects in its store) | 9,900 | 9,900 | 200 | 1.00 | 0.02 |",
			"| 30,000 | entries that are deletes | 0 | 0 | 300 | – | – |",
			"| 10,000 | entries of one quiet Reader.Relist once synced | – | 0 | – | – | – |",
			"| 30,000 | time of that relist (s) | – | 1.500 | – | – | – |",
		},
		save: {
			"| N pods | metric | checkpoint save |",
			"| 30,000 | checkpoint size (KiB) | 1,171.9 |",
			"| 30,000 | checkpoint size per object (B) | 40.0 |",
			"| 10,000 | Reader.Checkpoint: snapshot, encode, write, fsync (ms) | 20.0 |",
		},
	} {
		for _, want := range wants {
			if !strings.Contains(table, want) {
				t.Errorf("table lacks %q:\n%s", want, table)
			}
		}
	}
	if got := strings.Count(warm, "\n| "); got != 1+2*9 {
		t.Errorf("warm table: %d lines, want a header and 9 rows per N:\n%s", got, warm)
	}
	if strings.Contains(warm, "checkpoint size") {
		t.Errorf("the warm table has the checkpoint's rows:\n%s", warm)
	}
	// Rows follow the section's order: deletes right after entries.
	if strings.Index(warm, "entries that are deletes") > strings.Index(warm, "time to sync") {
		t.Errorf("rows out of the section's order:\n%s", warm)
	}
	if got := strings.Count(state, "\n| "); got != 1+2*10 {
		t.Errorf("state table: %d lines, want a header and 10 rows per N:\n%s", got, state)
	}
	if got := strings.Count(save, "\n| "); got != 1+2*7 {
		t.Errorf("save table: %d lines, want a header and 7 rows per N:\n%s", got, save)
	}
}

func TestRestartCSV(t *testing.T) {
	records := csvRecords(t, SummarizeRestart(fakeRestartResults([]int{10000}, 1)))
	want := "n,metric,unit,checkpoint-save,reader-warm,reader-cold,informer-restart,restart-floor,reader-relist,reader-expired," +
		"reader-warm/reader-cold,reader-warm/informer-restart,reader-relist/restart-floor,reader-expired/restart-floor"
	if len(records) != 1+len(restartMetrics) || strings.Join(records[0], ",") != want {
		t.Fatalf("%d records, header %v", len(records), records[0])
	}
	for _, rec := range records[1:] {
		if rec[1] == "checkpoint_kib" && (rec[3] != "390.625" || rec[4] != "" || rec[7] != "") {
			t.Errorf("checkpoint_kib: %v", rec)
		}
	}
}

// Another suite's runs are not the restart suite's (TestSyncReportFiles renders the restart report).
func TestRestartRunsRefused(t *testing.T) {
	if _, err := decodeRuns(strings.NewReader(`{"variant":"reader-pods","n":1}`), true, newRestartSuite().check); err == nil ||
		!strings.Contains(err.Error(), `"reader-pods" is not a variant of the restart suite`) {
		t.Errorf("a scope variant: %v", err)
	}
}

func TestCheckpointMetrics(t *testing.T) {
	save := ScopeResult{Variant: VariantCheckpointSave, Objects: 1000, CheckpointBytes: 39048, CheckpointSeconds: 0.0016}
	warm := ScopeResult{Variant: VariantReaderWarm, Objects: 30, Deletes: 10}
	informer := ScopeResult{Variant: VariantInformerRestart, Objects: 990}
	for _, m := range restartMetrics {
		switch m.Key {
		case "checkpoint_bytes_per_object":
			if got := m.Value(save); !near(got, 39.048) {
				t.Errorf("%s = %v", m.Key, got)
			}
		case "checkpoint_save_ms":
			if got := m.Value(save); !near(got, 1.6) {
				t.Errorf("%s = %v", m.Key, got)
			}
		case "deletes":
			if m.Value(warm) != 10 || !math.IsNaN(m.Value(informer)) {
				t.Errorf("deletes: warm %v, informer %v", m.Value(warm), m.Value(informer))
			}
		}
		if strings.HasPrefix(m.Key, "checkpoint_") && !math.IsNaN(m.Value(warm)) {
			t.Errorf("%s of the warm reader = %v, want none", m.Key, m.Value(warm))
		}
	}
	// The relabeled rows keep ScopeMetrics' keys and values.
	if restartMetrics[0].Key != "objects" || restartMetrics[0].Value(warm) != 30 || ScopeMetrics[0].Label != "objects in the initial state" {
		t.Errorf("relabel: %q %q", restartMetrics[0].Label, ScopeMetrics[0].Label)
	}
}

func TestAsksCompleteState(t *testing.T) {
	for url, want := range map[string]bool{
		"/api/v1/pods?allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&sendInitialEvents=true&watch=true": true,
		"/api/v1/pods?limit=500&resourceVersion=0":                              true,
		"/api/v1/pods?limit=1":                                                  false, // where a resumed stream's server stands
		"/api/v1/pods?allowWatchBookmarks=true&resourceVersion=1234&watch=true": false,
		"/api/v1/namespaces/bench-1/pods/pod-000001":                            false,
	} {
		req, err := http.NewRequest(http.MethodGet, "https://127.0.0.1:6443"+url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := asksCompleteState(req); got != want {
			t.Errorf("asksCompleteState(%s) = %v, want %v", url, got, want)
		}
	}
}

func TestRestartChildArgs(t *testing.T) {
	bp := &benchPlane{tmp: t.TempDir()}
	for _, v := range restartVariants {
		args := restartChildArgs(bp, v)
		file := map[string]string{VariantCheckpointSave: restartCheckpointFile, VariantReaderWarm: restartCheckpointFile,
			VariantReaderExpired: expiredCheckpointFile}[v]
		if file != "" && !slices.Equal(args, []string{"-checkpoint", filepath.Join(bp.tmp, file)}) || file == "" && args != nil {
			t.Errorf("%s: %q", v, args)
		}
	}
	// Before the checkpoint, the previous one is gone (nothing was deleted: no pod to re-create,
	// no server needed).
	path := filepath.Join(bp.tmp, restartCheckpointFile)
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &restartParent{}
	for range 2 { // a second time: no file, no error
		if err := p.before(context.Background(), suiteStep{bp: bp, variant: VariantCheckpointSave, n: 1000, run: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the previous checkpoint is still there: %v", err)
	}
	if err := p.before(context.Background(), suiteStep{bp: bp, variant: VariantReaderCold, n: 1000, run: 1}); err != nil {
		t.Errorf("before the cold reader: %v", err)
	}
}

func TestNewRestartSubject(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	ckpt := filepath.Join(t.TempDir(), "c")
	for _, v := range restartVariants {
		subj, err := newRestartSubject(v, ckpt, cfg)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		r, isReader := subj.(*readerSubject)
		_, isSave := subj.(*checkpointSaveSubject)
		_, after := subj.(afterSyncer)
		switch v {
		case VariantCheckpointSave:
			if !isSave || !after {
				t.Errorf("%s: %T", v, subj)
			}
		case VariantReaderWarm, VariantReaderExpired, VariantReaderCold:
			if !isReader || !r.unbuffered || len(r.opts) != map[string]int{VariantReaderWarm: 1, VariantReaderExpired: 1}[v] {
				t.Errorf("%s: %T %+v", v, subj, r)
			}
		case VariantReaderRelist:
			if rs, ok := subj.(*relistSubject); !ok || !after || !rs.unbuffered || len(rs.opts) != 0 {
				t.Errorf("%s: %T", v, subj)
			}
		case VariantRestartFloor:
			if f, ok := subj.(*floorSubject); !ok || after || f.what != "pods" {
				t.Errorf("%s: %T", v, subj)
			}
		case VariantInformerRestart:
			if _, ok := subj.(*podInformerSubject); !ok || after {
				t.Errorf("%s: %T", v, subj)
			}
		}
	}
	for _, v := range []string{VariantReaderWarm, VariantReaderExpired, VariantCheckpointSave} {
		if _, err := newRestartSubject(v, "", cfg); err == nil || !strings.Contains(err.Error(), "no -checkpoint file") {
			t.Errorf("%s without a file: %v", v, err)
		}
	}
	if _, err := newRestartSubject("reader-pods", ckpt, cfg); err == nil {
		t.Error("a scope variant was built")
	}
	if !slices.Equal(restartVariants[:1], []string{VariantCheckpointSave}) {
		t.Error("the checkpoint must be saved before the restarts")
	}
}

func TestRestartTargets(t *testing.T) {
	results := fakeRestartResults([]int{10000, 30000}, 1)
	set := func(floor, relist, expired float64) {
		for i := range results {
			switch r := &results[i]; r.Variant {
			case VariantRestartFloor:
				r.SyncCPU = floor * float64(r.N) / 10000
			case VariantReaderRelist:
				r.RelistCPU = relist * float64(r.N) / 10000
			case VariantReaderExpired:
				r.SyncCPU = expired * float64(r.N) / 10000
			}
		}
	}
	set(0.1, 0.25, 0.16)
	targets := SummarizeRestart(results).RestartTargets()
	if len(targets) != 2 || targets[0].Met || targets[1].Met {
		t.Fatalf("relist at 2.5 and warm after a 410 at 1.6 x the floor: %+v", targets)
	}
	if !strings.Contains(targets[0].Detail, "0.250 vs 0.100 s at 10,000 (2.50)") {
		t.Errorf("detail: %s", targets[0].Detail)
	}
	set(0.1, 0.14, 0.15)
	for _, tg := range SummarizeRestart(results).RestartTargets() {
		if !tg.Met {
			t.Errorf("at 1.4 and 1.5 x the floor: %+v", tg)
		}
	}
	if got := (ScopeTable{}).RestartTargets(); got[0].Met || !strings.Contains(got[0].Detail, errNoData.Error()) {
		t.Errorf("no runs: %+v", got)
	}
}
