// Package bench compares a watchlist.Reader with a client-go SharedInformerFactory informer for the
// same kinds (pods, services, deployments, RBAC) on a local control plane: time to initial sync, heap
// (peak during sync, and once synced), delivery lag and CPU under churn, and the cost of a relist
// of a quiet cluster. `make bench` runs it; BENCHMARKS.md records a run.
//
// The parent process starts etcd and kube-apiserver (internal/testenv), creates the objects, and
// re-executes itself once per measured run with a hidden -child reader|informer flag, so that the
// heaps of the two never mix. Runs alternate (reader, informer, reader on JSON, informer on JSON,
// informer without managedFields, reader, ...); the table reports the median of each metric.
//
// -suite scope (scope.go) measures the scope options on pods alone, each variant in its own child as
// well, initial sync only: a reader of one node's pods (WithFieldSelector) against an informer with
// the same field selector and the reader of every pod; WithMetadataOnly against the reader, a
// metadata informer and the typed informer; and the floor, the reader's WatchList request with only
// the watch envelopes decoded.
//
// -suite resources (resources.go) measures WithResources on a custom resource (Widgets, read as
// JSON), initial sync only, each variant in its own child: the reader against client-go's dynamic
// informer and metadata informer for the same resource, and the floor.
//
// -suite restart (restart.go) measures a warm restart (WithCheckpoint) on pods: a child saves a
// checkpoint, the parent updates 1% of the pods and deletes 1%, and a reader started from that
// checkpoint is measured against a reader started cold and a client-go pod informer started fresh,
// each in its own child; the saving child also times Reader.Checkpoint and reports the
// checkpoint's size.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Config is what the parent runs.
type Config struct {
	Ns           []int         // pod counts, increasing
	Runs         []int         // runs of each variant at each N (same length as Ns)
	Rate         float64       // churn changes per second
	Churn        time.Duration // churn duration
	Out          string        // folder for CSV, SVG and the raw runs
	CPUProfile   string        // children write CPU profiles named after this
	MemProfile   string        // children write heap profiles (once synced) named after this
	ReaderJSON   bool          // also measure the reader on JSON
	InformerJSON bool          // also measure the informer on JSON
	Strip        bool          // also measure the informer that drops managedFields
	Workers      int           // parallel writers for creation and churn
	Resync       time.Duration // the informer's resync period for the relist comparison
}

// hiddenFlags are the child's flags, left out of -help.
var hiddenFlags = map[string]bool{"child": true, "kubeconfig": true, "content": true, "strip": true, "checkpoint": true}

// Main runs the benchmark with command-line args (without the program name) and returns the exit
// code. Results go to stdout, progress and errors to stderr.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		ns       = fs.String("n", "1000,10000,30000", "object counts to measure, comma-separated (pods; Widgets with -suite resources; default 30000 with -suite restart)")
		runs     = fs.String("runs", "3", "runs of each variant per N: one number, or one per N (e.g. 3,3,2)")
		rate     = fs.Float64("rate", 500, "churn: changes per second")
		churn    = fs.Float64("churn", 10, "churn: seconds")
		out      = fs.String("out", "bench-results", "folder for results.md, results.csv, heap.svg and runs.jsonl")
		cpuProf  = fs.String("cpuprofile", "", "children write a CPU profile of their whole run to this path (variant, N and run inserted)")
		memProf  = fs.String("memprofile", "", "children write a heap profile once synced to this path (variant, N and run inserted)")
		jsonRd   = fs.Bool("reader-json", true, "also measure the reader with rest.Config.ContentType set to JSON")
		jsonInf  = fs.Bool("informer-json", true, "also measure the informer with rest.Config.ContentType set to JSON")
		stripInf = fs.Bool("informer-strip", true, "also measure the informer with a transform that drops managedFields")
		workers  = fs.Int("workers", 16, "parallel writers when creating objects and churning")
		resync   = fs.Duration("resync", 2*time.Second, "the informer's resync period, for the relist comparison")
		report   = fs.String("report", "", "only render the report into -out from this runs.jsonl of an earlier run (no control plane)")
		suite    = fs.String("suite", SuiteDefault, "`suite` to run: default (reader vs informer for 7 kinds: sync, churn, relist), scope (pods: one node's, metadata only, the floor; initial sync only; writes scope.md, scope.csv, scope-runs.jsonl), resources (Widgets, a CRD, through WithResources against dynamic and metadata informers, and the floor; initial sync only; writes resources.md, resources.csv, resources-runs.jsonl) or restart (pods: a reader restarted from a checkpoint after 1% of the pods changed and 1% were deleted, against a cold reader and a fresh informer, and the checkpoint's size and save time; writes restart.md, restart.csv, restart-runs.jsonl)")

		child      = fs.String("child", "", "internal: measure `reader|informer` in this process")
		kubeconfig = fs.String("kubeconfig", "", "internal: the child's kubeconfig")
		content    = fs.String("content", ContentDefault, "internal: the child's content type")
		strip      = fs.Bool("strip", false, "internal: the informer child strips managedFields")
		checkpoint = fs.String("checkpoint", "", "internal: the checkpoint file of a restart child")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bench [flags]\n\nCompares watchlist.Reader with a client-go informer on a local control plane\n(KUBEBUILDER_ASSETS names kube-apiserver and etcd). Flags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			if hiddenFlags[f.Name] {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(stderr, "  -%s\n    \t%s (default %q)\n", strings.TrimSpace(f.Name+" "+name), usage, f.DefValue)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ss, isSync := syncSuiteNamed(*suite)
	if *suite != SuiteDefault && !isSync {
		fmt.Fprintf(stderr, "bench: -suite %q: want %s, %s, %s or %s\n", *suite, SuiteDefault, SuiteScope, SuiteResources, SuiteRestart)
		return 2
	}

	if *child != "" {
		cfg := childConfig{mode: *child, kubeconfig: *kubeconfig, content: *content, resync: *resync, strip: *strip,
			cpuProfile: *cpuProf, memProfile: *memProf, checkpoint: *checkpoint}
		run := func() error { return runChild(ctx, cfg, os.Stdin, stdout) }
		if isSyncVariant(*child) {
			run = func() error { return runScopeChild(ctx, cfg, stdout) }
		}
		if err := run(); err != nil {
			fmt.Fprintf(stderr, "bench child: %v\n", err)
			return 1
		}
		return 0
	}

	if isSync {
		nsSet := false
		fs.Visit(func(f *flag.Flag) { nsSet = nsSet || f.Name == "n" })
		return mainSync(ctx, fs, ss, syncFlags{ns: *ns, runs: *runs, out: *out, cpuProfile: *cpuProf, memProfile: *memProf,
			report: *report, workers: *workers, nsSet: nsSet}, stdout, stderr)
	}

	if *report != "" {
		if err := rerender(*report, *out, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}

	cfg := Config{Rate: *rate, Churn: time.Duration(*churn * float64(time.Second)), Out: *out, CPUProfile: *cpuProf,
		MemProfile: *memProf, ReaderJSON: *jsonRd, InformerJSON: *jsonInf, Strip: *stripInf, Workers: *workers, Resync: *resync}
	return runSuite(stderr, *ns, *runs, func(ns, runs []int) error {
		cfg.Ns, cfg.Runs = ns, runs
		return cfg.validate()
	}, func() error { return Run(ctx, cfg, stdout, stderr) })
}

// runSuite parses the -n and -runs flags and hands them to set, which validates the suite's
// config, then runs it; it returns Main's exit code: 2 for a bad command line, 1 for a run that
// failed.
func runSuite(stderr io.Writer, nsFlag, runsFlag string, set func(ns, runs []int) error, run func() error) int {
	ns, err := parseInts(nsFlag)
	if err != nil {
		fmt.Fprintf(stderr, "bench: -n: %v\n", err)
		return 2
	}
	runs, err := parseInts(runsFlag)
	if err != nil {
		fmt.Fprintf(stderr, "bench: -runs: %v\n", err)
		return 2
	}
	if err := set(ns, runs); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	if err := run(); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// parseInts parses "1000,10000" into positive integers; a single value is allowed.
func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		if v < 1 {
			return nil, fmt.Errorf("%q: must be positive", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// validate reports a Config that Run cannot measure.
func (c Config) validate() error {
	if err := validateCounts(c.Ns, c.Runs); err != nil {
		return err
	}
	if c.Rate <= 0 || c.Churn <= 0 || c.Workers < 1 || c.Resync < time.Second {
		return errors.New("-rate and -churn must be positive, -workers at least 1, -resync at least 1s")
	}
	return nil
}

// validateCounts reports object counts (-n) and runs (-runs) that no suite can measure.
func validateCounts(ns, runs []int) error {
	switch {
	case len(ns) == 0:
		return errors.New("-n: no object count")
	case !slices.IsSorted(ns):
		return errors.New("-n must be increasing: objects are only ever added")
	case len(runs) != 1 && len(runs) != len(ns):
		return fmt.Errorf("-runs: want one count or one per N, got %d for %d N", len(runs), len(ns))
	case slices.ContainsFunc(runs, func(r int) bool { return r < 1 }):
		return errors.New("-runs: counts must be positive")
	}
	return nil
}

// variant is one kind of child run.
type variant struct {
	name    string
	mode    string
	content string
	strip   bool
}

// variants returns the variants in the order they alternate: the reader and the informer as they
// come (both on protobuf), then those asked for: the reader on JSON, the informer on JSON, the
// informer that drops managedFields.
func variants(readerJSON, informerJSON, strip bool) []variant {
	vs := []variant{{VariantReader, ModeReader, ContentDefault, false}, {VariantInformer, ModeInformer, ContentDefault, false}}
	if readerJSON {
		vs = append(vs, variant{VariantReaderJSON, ModeReader, ContentJSON, false})
	}
	if informerJSON {
		vs = append(vs, variant{VariantInformerJSON, ModeInformer, ContentJSON, false})
	}
	if strip {
		vs = append(vs, variant{VariantInformerStripped, ModeInformer, ContentDefault, true})
	}
	return vs
}

// Run starts a control plane, measures every N and writes the results: the table and the targets
// on stdout, and results.md, results.csv, heap.svg and runs.jsonl into cfg.Out.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	ns, runs := cfg.Ns, cfg.Runs
	if len(runs) == 1 {
		runs = slices.Repeat(runs, len(ns))
	}
	bp, err := startSuite(cfg.Out, cfg.CPUProfile, cfg.MemProfile, "runs.jsonl", "default suite", false, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if serr := bp.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	kubeconfig, cs := bp.kubeconfig, bp.cs

	started := time.Now()
	var results []Result
	var pop population
	ch := &churner{cs: cs, workers: cfg.Workers}
	enc := json.NewEncoder(bp.runs)
	vs := variants(cfg.ReaderJSON, cfg.InformerJSON, cfg.Strip)
	for i, n := range ns {
		fmt.Fprintf(stderr, "bench: N=%d: creating objects (%d workers)\n", n, cfg.Workers)
		if pop, err = populate(ctx, cs, pop, n, cfg.Workers, stderr); err != nil {
			return err
		}
		ch.pods = n
		if d, err := describePod(ctx, cs, n-1); err == nil { // the newest pod: not churned yet
			fmt.Fprintf(stderr, "bench: %s\n", d)
		} else {
			fmt.Fprintf(stderr, "bench: %v\n", err)
		}
		if i > 0 { // pod 0 was churned by earlier runs
			if d, err := describePod(ctx, cs, 0); err == nil {
				fmt.Fprintf(stderr, "bench: churned: %s\n", d)
			}
		}
		for run := 1; run <= runs[i]; run++ {
			for _, v := range vs {
				res, err := measureOne(ctx, cfg, v, n, run, kubeconfig, ch, stderr)
				if err != nil {
					return fmt.Errorf("N=%d run %d %s: %w", n, run, v.name, err)
				}
				results = append(results, res)
				if err := enc.Encode(res); err != nil {
					return fmt.Errorf("write runs.jsonl: %w", err)
				}
			}
		}
	}
	fmt.Fprintf(stderr, "bench: measured in %s\n", time.Since(started).Round(time.Second))
	return writeReport(Summarize(results), cfg.Out, stdout)
}

// rerender reads the results of an earlier run from runsFile and writes the report into out.
func rerender(runsFile, out string, stdout io.Writer) error {
	results, err := loadRuns[Result](runsFile, out, false, nil)
	if err != nil {
		return err
	}
	return writeReport(Summarize(results), out, stdout)
}

// loadRuns reads the runs file of an earlier run (see decodeRuns) and makes the folder out for the
// report.
func loadRuns[T any](runsFile, out string, strict bool, check func(T) error) ([]T, error) {
	f, err := os.Open(runsFile)
	if err != nil {
		return nil, fmt.Errorf("open runs: %w", err)
	}
	defer f.Close()
	results, err := decodeRuns(f, strict, check)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", runsFile, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", out, err)
	}
	return results, nil
}

// decodeRuns decodes one T per line; strict: no unknown field, so that one suite's runs are not
// read as another's; check, if not nil, refuses a result.
func decodeRuns[T any](r io.Reader, strict bool, check func(T) error) ([]T, error) {
	var results []T
	dec := json.NewDecoder(r)
	if strict {
		dec.DisallowUnknownFields()
	}
	for {
		var res T
		err := dec.Decode(&res)
		if errors.Is(err, io.EOF) {
			return results, nil
		}
		if err == nil && check != nil {
			err = check(res)
		}
		if err != nil {
			return nil, fmt.Errorf("result %d: %w", len(results)+1, err)
		}
		results = append(results, res)
	}
}

// writeReport prints the table and targets and writes them to out.
func writeReport(t Table, out string, stdout io.Writer) error {
	return publishReport(t.Markdown, t.Targets(), out, "results.md", stdout,
		reportFile{"results.csv", t.CSV}, reportFile{"heap.svg", t.SVG})
}

// reportFile is one file of a report in -out: its name and what writes it.
type reportFile struct {
	name  string
	write func(io.Writer) error
}

// publishReport renders a report's markdown and, when targets is not nil, its targets; prints
// them on stdout; and writes them into out as mdName, with files beside.
func publishReport(markdown func(io.Writer) error, targets []Target, out, mdName string, stdout io.Writer, files ...reportFile) error {
	var md strings.Builder
	if err := markdown(&md); err != nil {
		return err
	}
	if targets != nil {
		md.WriteString("\nTargets:\n\n")
		if err := WriteTargets(&md, targets); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(stdout, md.String()); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	mdFile := reportFile{mdName, func(w io.Writer) error { _, err := io.WriteString(w, md.String()); return err }}
	for _, f := range append([]reportFile{mdFile}, files...) {
		if err := writeFile(filepath.Join(out, f.name), f.write); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := write(f); err != nil {
		return errors.Join(fmt.Errorf("write %s: %w", path, err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// measureOne runs one child of variant v and drives it through its phases.
func measureOne(ctx context.Context, cfg Config, v variant, n, run int, kubeconfig string, ch *churner, stderr io.Writer) (res Result, err error) {
	args := []string{"-child", v.mode, "-content", v.content, "-kubeconfig", kubeconfig, "-resync", cfg.Resync.String(),
		"-strip=" + strconv.FormatBool(v.strip)}
	c, err := launchChild(ctx, args, cfg.CPUProfile, cfg.MemProfile, v.name, n, run, stderr)
	if err != nil {
		return res, err
	}
	defer func() {
		if ferr := c.finish(err != nil, 30*time.Second); ferr != nil && err == nil {
			err = ferr
		}
	}()
	tag := fmt.Sprintf("bench: N=%d run %d %-17s", n, run, v.name)

	if _, err := c.await(ctx, phaseSynced, syncTimeout+time.Minute); err != nil {
		return res, err
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Second):
	}
	expected := int(cfg.Rate * cfg.Churn.Seconds())
	if err := c.send(fmt.Sprintf("%s %d %d", cmdChurn, time.Now().UnixNano(), expected)); err != nil {
		return res, err
	}
	if _, err := c.await(ctx, phaseChurning, time.Minute); err != nil {
		return res, err
	}
	st := ch.run(ctx, cfg.Rate, cfg.Churn)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if st.failed > 0 {
		fmt.Fprintf(stderr, "%s: %d of %d changes failed, first: %v\n", tag, st.failed, st.failed+st.written, st.firstErr)
	}
	if err := c.send(fmt.Sprintf("%s %d", cmdChurned, st.written)); err != nil {
		return res, err
	}
	if _, err := c.await(ctx, phaseChurned, churnSeenWait+time.Minute); err != nil {
		return res, err
	}
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Second):
	}
	if err := c.send(cmdRelist); err != nil {
		return res, err
	}
	m, err := c.await(ctx, phaseDone, relistTimeout+time.Minute)
	if err != nil {
		return res, err
	}
	res = *m.Result
	res.Variant, res.N, res.Run = v.name, n, run
	res.ChurnRate = float64(st.written) / st.elapsed.Seconds()
	fmt.Fprintf(stderr, "%s: %d objects synced in %.2f s, heap %.1f MiB (peak %.1f); churn %.0f/s seen %d/%d lag p50 %.1f p99 %.1f ms, %.3f CPU s/1000; relist %d entries in %.2f s\n",
		tag, res.Objects, res.SyncSeconds, float64(res.HeapSynced)/mib, float64(res.HeapPeakSync)/mib,
		res.ChurnRate, res.ChurnSeen, res.ChurnWritten, res.LagP50Ms, res.LagP99Ms, res.CPUPer1000(),
		res.RelistEntries, res.RelistSeconds)
	return res, nil
}

// launchChild lets the apiserver settle for 2 s after the previous child or the creation of the
// objects, then starts a child with args and, when asked for, the profile flags (cpuProfile,
// memProfile) named for variant v at n and run.
func launchChild(ctx context.Context, args []string, cpuProfile, memProfile, v string, n, run int, stderr io.Writer) (*childProc, error) {
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", profilePath(cpuProfile, v, n, run))
	}
	if memProfile != "" {
		args = append(args, "-memprofile", profilePath(memProfile, v, n, run))
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	return startChild(args, stderr)
}

// profilePath inserts "-<variant>-n<N>-r<run>" before path's extension.
func profilePath(path, variant string, n, run int) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%s-n%d-r%d%s", strings.TrimSuffix(path, ext), variant, n, run, ext)
}
