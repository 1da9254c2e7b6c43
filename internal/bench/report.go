package bench

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Variants: what one child measures.
const (
	VariantReader       = "reader"        // watchlist.Reader, rest.Config as it comes (protobuf)
	VariantInformer     = "informer"      // client-go SharedInformerFactory, as it comes (protobuf)
	VariantReaderJSON   = "reader-json"   // watchlist.Reader, ContentType JSON
	VariantInformerJSON = "informer-json" // the informer, ContentType JSON
	// VariantInformerStripped is the informer with a transform that drops managedFields.
	VariantInformerStripped = "informer-stripped"
)

const mib = 1 << 20

// MetricOf is one row kind of a table: a value taken from each result R, summarized by the median.
type MetricOf[R any] struct {
	Key      string // CSV name
	Label    string // table name
	Unit     string
	Decimals int
	Value    func(R) float64
}

// Metric is one row kind of the default suite's table.
type Metric = MetricOf[Result]

// Metrics are the table's rows for each N, in order.
var Metrics = []Metric{
	{"objects", "objects in the initial state", "", 0, func(r Result) float64 { return float64(r.Objects) }},
	{"sync_s", "time to initial sync", "s", 2, func(r Result) float64 { return r.SyncSeconds }},
	{"sync_cpu_s", "CPU during initial sync", "s", 2, func(r Result) float64 { return r.SyncCPU }},
	{"heap_peak_sync_mib", "peak heap during sync", "MiB", 1, func(r Result) float64 { return float64(r.HeapPeakSync) / mib }},
	{"heap_synced_mib", "heap once synced (after GC)", "MiB", 1, func(r Result) float64 { return float64(r.HeapSynced) / mib }},
	{"bytes_per_object", "heap per object once synced", "B", 0, Result.PerObjectBytes},
	{"churn_rate", "changes written", "/s", 0, func(r Result) float64 { return r.ChurnRate }},
	{"lag_p50_ms", "delivery lag p50", "ms", 1, func(r Result) float64 { return r.LagP50Ms }},
	{"lag_p99_ms", "delivery lag p99", "ms", 1, func(r Result) float64 { return r.LagP99Ms }},
	{"cpu_per_1000", "CPU per 1,000 changes", "s", 3, Result.CPUPer1000},
	{"relist_entries", "quiet relist: entries (informer: resync callbacks per period)", "", 0, func(r Result) float64 { return float64(r.RelistEntries) }},
	{"relist_s", "quiet relist: duration (informer: resync pass)", "s", 2, func(r Result) float64 { return r.RelistSeconds }},
	{"relist_cpu_s", "quiet relist: CPU", "s", 2, func(r Result) float64 { return r.RelistCPUSeconds }},
	{"relist_peak_heap_mib", "quiet relist: peak heap", "MiB", 1, func(r Result) float64 { return float64(r.RelistPeakHeap) / mib }},
}

// Row is one metric at one N: the median over runs of each variant (NaN: not measured).
type Row struct {
	N            int
	Metric       Metric
	Reader       float64 // VariantReader
	Informer     float64 // VariantInformer
	ReaderJSON   float64 // VariantReaderJSON
	InformerJSON float64 // VariantInformerJSON
	Stripped     float64 // VariantInformerStripped
}

// Ratio is Reader / Informer (NaN when undefined).
func (r Row) Ratio() float64 { return ratio(r.Reader, r.Informer) }

// Table is the summary of a benchmark: Rows grouped by N in increasing order, Metrics order within.
type Table struct {
	Rows []Row
	// Results are the runs themselves.
	Results []Result
}

// Summarize takes the median of every metric over the runs of each variant at each N.
func Summarize(results []Result) Table {
	t := Table{Results: results}
	byKey := map[int]map[string][]Result{}
	for _, r := range results {
		if byKey[r.N] == nil {
			byKey[r.N] = map[string][]Result{}
		}
		byKey[r.N][r.Variant] = append(byKey[r.N][r.Variant], r)
	}
	ns := make([]int, 0, len(byKey))
	for n := range byKey {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	median := func(rs []Result, m Metric) float64 {
		vals := make([]float64, len(rs))
		for i, r := range rs {
			vals[i] = m.Value(r)
		}
		return Median(vals)
	}
	for _, n := range ns {
		for _, m := range Metrics {
			t.Rows = append(t.Rows, Row{
				N:          n,
				Metric:     m,
				Reader:     median(byKey[n][VariantReader], m),
				Informer:   median(byKey[n][VariantInformer], m),
				ReaderJSON: median(byKey[n][VariantReaderJSON], m),

				InformerJSON: median(byKey[n][VariantInformerJSON], m),
				Stripped:     median(byKey[n][VariantInformerStripped], m),
			})
		}
	}
	return t
}

// Get returns the row of metric key at n.
func (t Table) Get(n int, key string) (Row, bool) { return rowAt(t.Rows, n, key, Row.at) }

// Ns returns the Ns of the table, increasing.
func (t Table) Ns() []int { return rowNs(t.Rows, Row.at) }

func (r Row) at() (int, string) { return r.N, r.Metric.Key }

// rowAt returns the row of rows at n for metric key; at gives a row's N and metric key.
func rowAt[R any](rows []R, n int, key string, at func(R) (int, string)) (R, bool) {
	for _, r := range rows {
		if rn, rk := at(r); rn == n && rk == key {
			return r, true
		}
	}
	var zero R
	return zero, false
}

// rowNs returns the Ns of rows sorted by N, increasing.
func rowNs[R any](rows []R, at func(R) (int, string)) []int {
	var ns []int
	for _, r := range rows {
		if n, _ := at(r); len(ns) == 0 || ns[len(ns)-1] != n {
			ns = append(ns, n)
		}
	}
	return ns
}

// has reports whether any row has a value for get.
func (t Table) has(get func(Row) float64) bool {
	return slices.ContainsFunc(t.Rows, func(r Row) bool { return !math.IsNaN(get(r)) })
}

// column is one variant's values in the table and its line in the chart.
type column struct {
	name  string
	color string // in the SVG chart
	get   func(Row) float64
}

// columns lists every variant: the reader and the informer, always measured, then the variants
// shown only where measured.
func columns() []column {
	return []column{
		{"reader", "#1f77b4", func(r Row) float64 { return r.Reader }},
		{"informer", "#d62728", func(r Row) float64 { return r.Informer }},
		{"reader, JSON", "#2ca02c", func(r Row) float64 { return r.ReaderJSON }},
		{"informer, JSON", "#ff7f0e", func(r Row) float64 { return r.InformerJSON }},
		{"informer, no managedFields", "#9467bd", func(r Row) float64 { return r.Stripped }},
	}
}

// extraColumns are the columns after reader, informer and their ratio that t has values for.
func (t Table) extraColumns() []column {
	var out []column
	for _, c := range columns()[2:] {
		if t.has(c.get) {
			out = append(out, c)
		}
	}
	return out
}

// format renders v with d decimals and thousands separators, "–" for NaN.
func format(v float64, d int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	s := strconv.FormatFloat(v, 'f', d, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatRatio renders a ratio with two significant decimals.
func formatRatio(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case v != 0 && math.Abs(v) < 0.01:
		return strconv.FormatFloat(v, 'f', 4, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// Markdown writes the table: one row per metric and N, with reader, informer, their ratio and (when
// measured) the reader and the informer on JSON and the informer without managedFields side by side.
func (t Table) Markdown(w io.Writer) error {
	extra := t.extraColumns()
	var b strings.Builder
	b.WriteString("| N pods | metric | reader | informer | reader / informer |")
	for _, c := range extra {
		b.WriteString(" " + c.name + " |")
	}
	b.WriteString("\n|---:|---|---:|---:|---:|")
	b.WriteString(strings.Repeat("---:|", len(extra)))
	b.WriteString("\n")
	for _, r := range t.Rows {
		label := r.Metric.Label
		if r.Metric.Unit != "" {
			label += " (" + r.Metric.Unit + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |", format(float64(r.N), 0), label,
			format(r.Reader, r.Metric.Decimals), format(r.Informer, r.Metric.Decimals), formatRatio(r.Ratio()))
		for _, c := range extra {
			fmt.Fprintf(&b, " %s |", format(c.get(r), r.Metric.Decimals))
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// csvFloat renders v for CSV: plain digits, "" for NaN.
func csvFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// CSV writes the table as CSV with a header row.
func (t Table) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	records := [][]string{{"n", "metric", "unit", "reader", "informer", "ratio", "reader_json", "informer_json", "informer_stripped"}}
	for _, r := range t.Rows {
		records = append(records, []string{strconv.Itoa(r.N), r.Metric.Key, r.Metric.Unit,
			csvFloat(r.Reader), csvFloat(r.Informer), csvFloat(r.Ratio()), csvFloat(r.ReaderJSON), csvFloat(r.InformerJSON), csvFloat(r.Stripped)})
	}
	if err := cw.WriteAll(records); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// Target is one of the goals of the benchmark, checked against a table.
type Target struct {
	Name   string
	Met    bool
	Detail string
}

// errNoData: a target cannot be checked without the runs it needs.
var errNoData = errors.New("not measured")

// Targets checks the benchmark's goals: heap once synced of the reader at most a tenth of the
// informer's at 10,000 pods and flat per object; time to sync no worse than the informer's at every
// N; delivery lag p99 under 100 ms; no entry from a quiet relist in any run.
func (t Table) Targets() []Target {
	var out []Target
	add := func(name string, met bool, err error, detail string) {
		if err != nil {
			detail = err.Error()
		}
		out = append(out, Target{Name: name, Met: met && err == nil, Detail: detail})
	}

	if r, ok := t.Get(10000, "heap_synced_mib"); ok {
		add("heap once synced at 10,000 pods: reader <= 1/10 of informer", r.Ratio() <= 0.1, nil,
			fmt.Sprintf("%s MiB vs %s MiB, ratio %s", format(r.Reader, 1), format(r.Informer, 1), formatRatio(r.Ratio())))
	} else {
		add("heap once synced at 10,000 pods: reader <= 1/10 of informer", false, errNoData, "")
	}

	var per []string
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, n := range t.Ns() {
		r, _ := t.Get(n, "bytes_per_object")
		per = append(per, fmt.Sprintf("%s B at %s", format(r.Reader, 0), format(float64(n), 0)))
		if n >= 10000 {
			lo, hi = min(lo, r.Reader), max(hi, r.Reader)
		}
	}
	if math.IsInf(lo, 0) {
		add("reader heap flat per object (N >= 10,000 within 25%)", false, errNoData, "")
	} else {
		detail := strings.Join(per, ", ")
		if reader, informer, ok := t.marginal(); ok {
			detail += fmt.Sprintf("; marginal between the two largest N: reader %s B, informer %s B per object",
				format(reader, 0), format(informer, 0))
		}
		add("reader heap flat per object (N >= 10,000 within 25%)", hi <= 1.25*lo, nil, detail)
	}

	var syncs []string
	syncMet := len(t.Ns()) > 0
	for _, n := range t.Ns() {
		r, _ := t.Get(n, "sync_s")
		syncMet = syncMet && r.Reader <= r.Informer
		syncs = append(syncs, fmt.Sprintf("%s s vs %s s at %s", format(r.Reader, 2), format(r.Informer, 2), format(float64(n), 0)))
	}
	add("time to sync: reader <= informer at every N", syncMet, nil, strings.Join(syncs, ", "))

	var lags []string
	lagMet := len(t.Ns()) > 0
	for _, n := range t.Ns() {
		r, _ := t.Get(n, "lag_p99_ms")
		rate, _ := t.Get(n, "churn_rate")
		lagMet = lagMet && r.Reader < 100
		lags = append(lags, fmt.Sprintf("%s ms at %s (%s changes/s)", format(r.Reader, 1), format(float64(n), 0), format(rate.Reader, 0)))
	}
	add("reader delivery lag p99 < 100 ms", lagMet, nil, strings.Join(lags, ", "))

	relists, nonZero := 0, 0
	for _, r := range t.Results {
		if r.Variant == VariantReader || r.Variant == VariantReaderJSON {
			relists++
			if r.RelistEntries != 0 {
				nonZero++
			}
		}
	}
	if relists == 0 {
		add("quiet relist delivers 0 entries (every reader run)", false, errNoData, "")
	} else {
		add("quiet relist delivers 0 entries (every reader run)", nonZero == 0, nil,
			fmt.Sprintf("%d of %d relists delivered entries", nonZero, relists))
	}
	return out
}

// marginal returns the heap once synced per added object between the two largest N (the slope, free
// of fixed costs), for the reader and the informer.
func (t Table) marginal() (reader, informer float64, ok bool) {
	ns := t.Ns()
	if len(ns) < 2 {
		return 0, 0, false
	}
	a, b := ns[len(ns)-2], ns[len(ns)-1]
	ha, _ := t.Get(a, "heap_synced_mib")
	hb, _ := t.Get(b, "heap_synced_mib")
	oa, _ := t.Get(a, "objects")
	ob, _ := t.Get(b, "objects")
	slope := func(x, y, ox, oy float64) float64 { return ratio((y-x)*mib, oy-ox) }
	reader, informer = slope(ha.Reader, hb.Reader, oa.Reader, ob.Reader), slope(ha.Informer, hb.Informer, oa.Informer, ob.Informer)
	return reader, informer, !math.IsNaN(reader) && !math.IsNaN(informer)
}

// WriteTargets writes the targets as a markdown list.
func WriteTargets(w io.Writer, targets []Target) error {
	var b strings.Builder
	for _, tg := range targets {
		mark := "missed"
		if tg.Met {
			mark = "met"
		}
		fmt.Fprintf(&b, "- %s: **%s** (%s)\n", tg.Name, mark, tg.Detail)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write targets: %w", err)
	}
	return nil
}
