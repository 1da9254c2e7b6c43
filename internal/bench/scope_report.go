package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ScopeMetric is one row kind of the scope tables.
type ScopeMetric = MetricOf[ScopeResult]

// ScopeMetrics are the scope tables' rows for each N, in order.
var ScopeMetrics = []ScopeMetric{
	{"objects", "objects in the initial state", "", 0, func(r ScopeResult) float64 { return float64(r.Objects) }},
	{"sync_s", "time to initial sync", "s", 3, func(r ScopeResult) float64 { return r.SyncSeconds }},
	{"sync_cpu_s", "CPU during initial sync", "s", 3, func(r ScopeResult) float64 { return r.SyncCPU }},
	{"received_kib", "bytes received during sync (wire: TLS, HTTP/2, gzip)", "KiB", 0,
		func(r ScopeResult) float64 { return float64(r.BytesReceived) / kib }},
	{"body_kib", "response bodies read during sync (after gzip)", "KiB", 0,
		func(r ScopeResult) float64 { return float64(r.BodyBytes) / kib }},
	{"heap_peak_sync_mib", "peak heap during sync", "MiB", 1, func(r ScopeResult) float64 { return float64(r.HeapPeakSync) / mib }},
	{"heap_synced_mib", "heap once synced (after GC)", "MiB", 1, func(r ScopeResult) float64 { return float64(r.HeapSynced) / mib }},
}

// scopeLabels are the column names of the scope variants.
var scopeLabels = map[string]string{
	VariantReaderNode:       "reader, one node",
	VariantInformerNode:     "informer, one node",
	VariantReaderPods:       "reader",
	VariantReaderMetadata:   "reader, metadata",
	VariantInformerMetadata: "metadata informer",
	VariantInformerPods:     "informer",
	VariantFloor:            "floor",
}

// scopeRatio is a ratio column: the median of Num over the median of Den.
type scopeRatio struct{ Num, Den string }

// Key is the ratio's CSV column, "num/den".
func (r scopeRatio) Key() string { return r.Num + "/" + r.Den }

// syncLayout is how the report of a sync suite is laid out: an introduction, then one table per
// section; its CSV has a column per variant, then one per ratio.
type syncLayout struct {
	intro    string            // the paragraph before the tables; %s: how many runs the medians are of
	counted  string            // what N counts, for the first column's header: "pods"
	variants []string          // every variant, in the CSV's order
	labels   map[string]string // variant → column name
	sections []scopeSection
	metrics  []ScopeMetric // the rows at each N, in order; nil: ScopeMetrics
}

// rowMetrics are the rows of l's tables at each N, in order.
func (l *syncLayout) rowMetrics() []ScopeMetric {
	if l.metrics != nil {
		return l.metrics
	}
	return ScopeMetrics
}

// ratioLabel is the table column of ratio r.
func (l *syncLayout) ratioLabel(r scopeRatio) string {
	return l.labels[r.Num] + " / " + l.labels[r.Den]
}

// bytesNote says what the bytes rows of a sync suite's tables count.
const bytesNote = "*bytes received* is what the child read from its TCP connections from start to sync " +
	"(TLS handshake and records, HTTP/2 frames, the gzip body the server sends a WatchList; no TCP/IP headers); " +
	"*response bodies* are the same responses' bodies as the decoders read them, once the transport undid the gzip."

// scopeLayout is the scope suite's report.
var scopeLayout = syncLayout{
	intro:    "Scope suite: medians of %s per variant and N, each run in its own process, pods only. " + bytesNote,
	counted:  "pods",
	variants: scopeVariants,
	labels:   scopeLabels,
	sections: scopeSections,
}

// scopeSection is one table of a sync suite's report.
type scopeSection struct {
	Title    string
	Note     string
	Variants []string
	Ratios   []scopeRatio
	Metrics  []string // keys of the layout's rowMetrics; nil: every one
}

// scopeSections are the tables of the scope report, in order.
var scopeSections = []scopeSection{
	{
		Title: "Per-node pods: `WithFieldSelector(RTPod, \"" + scopeFieldSelector + "\")`",
		Note: fmt.Sprintf("The pods are spread round-robin over %d node names (spec.nodeName, set at create), so one node has 1%% of them. "+
			"*reader, one node* and *informer, one node* (informers.WithTweakListOptions) read that node's pods; *reader* reads every pod. "+
			"Expected: the per-node costs a small fixed cost plus ~1%% of the cluster-wide reader's.", scopeNodes),
		Variants: []string{VariantReaderNode, VariantInformerNode, VariantReaderPods},
		Ratios:   []scopeRatio{{VariantReaderNode, VariantReaderPods}, {VariantReaderNode, VariantInformerNode}},
	},
	{
		Title: "Metadata only against whole objects: `WithMetadataOnly(RTPod)`",
		Note: "*reader, metadata* and the *metadata informer* (k8s.io/client-go/metadata/metadatainformer, pods) receive PartialObjectMetadata; " +
			"*reader* and *informer* (the typed pod informer) whole pods; all on protobuf. " +
			"The metadata informer's sync is awaited as the typed factory's WaitForCacheSyncWithContext does (cache.WaitFor on HasSyncedChecker), " +
			"not with its factory's WaitForCacheSync, which polls every 100 ms.",
		Variants: []string{VariantReaderMetadata, VariantReaderPods, VariantInformerMetadata, VariantInformerPods},
		Ratios: []scopeRatio{{VariantReaderMetadata, VariantInformerPods}, {VariantReaderMetadata, VariantReaderPods},
			{VariantInformerMetadata, VariantInformerPods}},
	},
	{
		Title: "The floor: the WatchList request alone",
		Note: "*floor* sends the reader's WatchList request for every pod (sendInitialEvents=true, resourceVersionMatch=NotOlderThan, " +
			"allowWatchBookmarks, protobuf) and decodes only the watch envelopes (frame to metav1.WatchEvent, the object left as bytes; " +
			"a bookmark's object is decoded to find k8s.io/initial-events-end), stopping at the end bookmark: what the server and the network cost.",
		Variants: []string{VariantFloor, VariantReaderPods, VariantInformerPods},
		Ratios:   []scopeRatio{{VariantReaderPods, VariantFloor}, {VariantInformerPods, VariantFloor}},
		Metrics:  []string{"objects", "sync_s", "sync_cpu_s", "received_kib", "body_kib"},
	},
}

// ScopeRow is one metric at one N: the median over runs of each variant.
type ScopeRow struct {
	N      int
	Metric ScopeMetric
	Values map[string]float64 // variant → median; a variant not measured is absent
}

// Value is the median of variant v, NaN when v was not measured.
func (r ScopeRow) Value(v string) float64 {
	if x, ok := r.Values[v]; ok {
		return x
	}
	return math.NaN()
}

// Ratio is the median of num over the median of den (NaN when undefined).
func (r ScopeRow) Ratio(num, den string) float64 { return ratio(r.Value(num), r.Value(den)) }

// ScopeTable is the summary of a run of a sync suite (scope, resources or restart): Rows grouped by
// N in increasing order, in the order of the layout's rowMetrics within.
type ScopeTable struct {
	Rows    []ScopeRow
	Results []ScopeResult
	runs    map[int]map[string]int // N → variant → runs
	layout  *syncLayout
}

// SummarizeScope takes the median of every metric over the runs of each variant of the scope suite
// at each N.
func SummarizeScope(results []ScopeResult) ScopeTable { return summarizeSync(results, &scopeLayout) }

// summarizeSync takes the median of every metric over the runs of each variant at each N, for a
// report laid out as layout.
func summarizeSync(results []ScopeResult, layout *syncLayout) ScopeTable {
	t := ScopeTable{Results: results, runs: map[int]map[string]int{}, layout: layout}
	byKey := map[int]map[string][]ScopeResult{}
	for _, r := range results {
		if byKey[r.N] == nil {
			byKey[r.N] = map[string][]ScopeResult{}
			t.runs[r.N] = map[string]int{}
		}
		byKey[r.N][r.Variant] = append(byKey[r.N][r.Variant], r)
		t.runs[r.N][r.Variant]++
	}
	ns := make([]int, 0, len(byKey))
	for n := range byKey {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	for _, n := range ns {
		for _, m := range layout.rowMetrics() {
			row := ScopeRow{N: n, Metric: m, Values: map[string]float64{}}
			for v, rs := range byKey[n] {
				vals := make([]float64, len(rs))
				for i, r := range rs {
					vals[i] = m.Value(r)
				}
				row.Values[v] = Median(vals)
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

// Get returns the row of metric key at n.
func (t ScopeTable) Get(n int, key string) (ScopeRow, bool) {
	return rowAt(t.Rows, n, key, ScopeRow.at)
}

// Ns returns the Ns of the table, increasing.
func (t ScopeTable) Ns() []int { return rowNs(t.Rows, ScopeRow.at) }

func (r ScopeRow) at() (int, string) { return r.N, r.Metric.Key }

// runsNote says how many runs the medians are of, e.g. "3 runs" or "1 to 3 runs".
func (t ScopeTable) runsNote() string {
	lo, hi := math.MaxInt, 0
	for _, byVariant := range t.runs {
		for _, k := range byVariant {
			lo, hi = min(lo, k), max(hi, k)
		}
	}
	switch {
	case hi == 0:
		return "no runs"
	case lo == hi && lo == 1:
		return "1 run"
	case lo == hi:
		return fmt.Sprintf("%d runs", lo)
	default:
		return fmt.Sprintf("%d to %d runs", lo, hi)
	}
}

// Markdown writes one table per section: a row per metric and N, a column per variant (the median
// of its runs), then the ratios.
func (t ScopeTable) Markdown(w io.Writer) error {
	var b strings.Builder
	l := t.layout
	fmt.Fprintf(&b, l.intro+"\n", t.runsNote())
	for _, s := range l.sections {
		fmt.Fprintf(&b, "\n### %s\n\n%s\n\n| N %s | metric |", s.Title, s.Note, l.counted)
		for _, v := range s.Variants {
			b.WriteString(" " + l.labels[v] + " |")
		}
		for _, r := range s.Ratios {
			b.WriteString(" " + l.ratioLabel(r) + " |")
		}
		b.WriteString("\n|---:|---|" + strings.Repeat("---:|", len(s.Variants)+len(s.Ratios)) + "\n")
		for _, row := range t.sectionRows(s) {
			label := row.Metric.Label
			if row.Metric.Unit != "" {
				label += " (" + row.Metric.Unit + ")"
			}
			fmt.Fprintf(&b, "| %s | %s |", format(float64(row.N), 0), label)
			for _, v := range s.Variants {
				fmt.Fprintf(&b, " %s |", format(row.Value(v), row.Metric.Decimals))
			}
			for _, r := range s.Ratios {
				fmt.Fprintf(&b, " %s |", formatRatio(row.Ratio(r.Num, r.Den)))
			}
			b.WriteString("\n")
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// sectionRows are the rows of section s: at each N, those of s.Metrics in its order, or every row
// when s.Metrics is nil.
func (t ScopeTable) sectionRows(s scopeSection) []ScopeRow {
	if s.Metrics == nil {
		return t.Rows
	}
	var out []ScopeRow
	for _, n := range t.Ns() {
		for _, key := range s.Metrics {
			if r, ok := t.Get(n, key); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// ratios are every section's ratios, each once, in order.
func (l *syncLayout) ratios() []scopeRatio {
	var out []scopeRatio
	for _, s := range l.sections {
		for _, r := range s.Ratios {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// CSV writes the table as CSV with a header row: n, metric, unit, the median of every variant,
// then every ratio ("num/den").
func (t ScopeTable) CSV(w io.Writer) error {
	ratios := t.layout.ratios()
	header := []string{"n", "metric", "unit"}
	header = append(header, t.layout.variants...)
	for _, r := range ratios {
		header = append(header, r.Key())
	}
	records := [][]string{header}
	for _, row := range t.Rows {
		rec := []string{strconv.Itoa(row.N), row.Metric.Key, row.Metric.Unit}
		for _, v := range t.layout.variants {
			rec = append(rec, csvFloat(row.Value(v)))
		}
		for _, r := range ratios {
			rec = append(rec, csvFloat(row.Ratio(r.Num, r.Den)))
		}
		records = append(records, rec)
	}
	if err := csv.NewWriter(w).WriteAll(records); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// targetN is the pod count the scope suite's targets are checked at.
const targetN = 10000

// Targets checks the scope suite's goals at 10,000 pods: the metadata reader syncs in at most 0.4
// times the typed informer's time and receives at most a third of its bytes. The details give the
// ratios at every N measured.
func (t ScopeTable) Targets() []Target {
	check := func(name, key string, limit float64, decimals int, unit string) Target {
		var at []string
		for _, n := range t.Ns() {
			r, _ := t.Get(n, key)
			at = append(at, fmt.Sprintf("%s vs %s %s at %s (%s)", format(r.Value(VariantReaderMetadata), decimals),
				format(r.Value(VariantInformerPods), decimals), unit, format(float64(n), 0),
				formatRatio(r.Ratio(VariantReaderMetadata, VariantInformerPods))))
		}
		r, ok := t.Get(targetN, key)
		q := r.Ratio(VariantReaderMetadata, VariantInformerPods)
		met := ok && !math.IsNaN(q) && q <= limit
		detail := strings.Join(at, ", ")
		if !ok || math.IsNaN(q) {
			detail = fmt.Sprintf("%s at %s pods", errNoData, format(targetN, 0))
			if len(at) > 0 {
				detail += "; " + strings.Join(at, ", ")
			}
		}
		return Target{Name: name, Met: met, Detail: detail}
	}
	return []Target{
		check("time to sync at 10,000 pods: reader, metadata <= 0.4 x informer", "sync_s", 0.4, 3, "s"),
		check("bytes received during sync at 10,000 pods: reader, metadata <= 1/3 of informer", "received_kib", 1.0/3, 0, "KiB"),
	}
}
