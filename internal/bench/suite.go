package bench

// Sync suites (-suite scope, -suite resources, -suite restart) measure only the initial sync (for
// the restart suite, a restart's first sync): each variant runs in its own child process, as the
// default suite's variants do, and reports its time, CPU, bytes read from the network and heap (a
// ScopeResult). What differs from suite to suite (the
// objects created, the variants, what changes between children, the tables) is a syncSuite; the
// driving is the same.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// ScopeConfig is what a sync suite (scope, resources or restart) runs.
type ScopeConfig struct {
	Ns         []int  // object counts, increasing
	Runs       []int  // runs of each variant at each N (one, or one per N)
	Out        string // folder for the suite's markdown, CSV and runs files
	CPUProfile string // children write CPU profiles named after this
	MemProfile string // children write heap profiles (once synced) named after this
	Workers    int    // parallel writers when creating objects
}

// validate reports a ScopeConfig that a sync suite cannot measure.
func (c ScopeConfig) validate() error {
	if err := validateCounts(c.Ns, c.Runs); err != nil {
		return err
	}
	if c.Workers < 1 {
		return errors.New("-workers must be at least 1")
	}
	return nil
}

// syncSuite is what one sync suite measures and how it reports it.
type syncSuite struct {
	name     string   // its -suite
	counted  string   // what N counts, for progress: "pods"
	variants []string // in the order they alternate within a run
	// Files in -out.
	runsFile, markdownFile, csvFile string
	// populate creates objects have..n-1 on bp (and what they need, when have is 0) with workers
	// writers, and returns the new count.
	populate func(ctx context.Context, bp *benchPlane, have, n, workers int, log io.Writer) (int, error)
	// describe says, once populated with n objects, what one of them is like (its size).
	describe func(ctx context.Context, bp *benchPlane, n int) (string, error)
	// expected is how many objects variant v holds once synced with n objects.
	expected func(v string, n int) int
	// expectedDeletes, if not nil, is how many of them are deletes (ScopeResult.Deletes).
	expectedDeletes func(v string, n int) int
	// exact: a run that holds another count fails the suite; else it is only warned about.
	exact     bool
	summarize func([]ScopeResult) ScopeTable
	targets   func(ScopeTable) []Target // nil: the suite has none

	// defaultNs, if not "", replaces -n's default; minN, if not 0, is the least N the suite takes.
	defaultNs string
	minN      int
	// before, if not nil, runs in the parent before each child: what the suite changes in the
	// cluster between children (step.variant is the child's).
	before func(ctx context.Context, step suiteStep) error
	// childArgs, if not nil, are extra flags for the child of variant v on bp.
	childArgs func(bp *benchPlane, v string) []string
	// restartable: before may restart the apiserver (benchPlane.plane.RestartAPIServer).
	restartable bool
}

// suiteStep is where a sync suite stands when its before hook runs: the next child's variant, N
// and run, on bp, with workers parallel writers and progress on log.
type suiteStep struct {
	bp      *benchPlane
	variant string
	n, run  int
	workers int
	log     io.Writer
}

// syncSuiteNamed returns the sync suite of -suite name, or false for the default suite or an
// unknown name.
func syncSuiteNamed(name string) (*syncSuite, bool) {
	switch name {
	case SuiteScope:
		return &scopeSuite, true
	case SuiteResources:
		return &resourcesSuite, true
	case SuiteRestart:
		return newRestartSuite(), true
	}
	return nil, false
}

// isSyncVariant reports whether name is a variant of a sync suite: its child runs runScopeChild.
func isSyncVariant(name string) bool {
	return isScopeVariant(name) || isResourcesVariant(name) || isRestartVariant(name)
}

// check refuses a result of a variant the suite does not have.
func (s *syncSuite) check(res ScopeResult) error {
	if !slices.Contains(s.variants, res.Variant) {
		return fmt.Errorf("%q is not a variant of the %s suite", res.Variant, s.name)
	}
	return nil
}

// defaultOnlyFlags are the flags of the default suite (churn, relist and its extra variants), which
// the sync suites do not use.
var defaultOnlyFlags = []string{"rate", "churn", "reader-json", "informer-json", "informer-strip", "resync"}

// syncFlags are the parsed flags a sync suite uses.
type syncFlags struct {
	ns, runs, out, cpuProfile, memProfile, report string
	workers                                       int
	nsSet                                         bool // -n was on the command line
}

// mainSync runs sync suite s for Main once the flags are parsed, and returns the exit code.
func mainSync(ctx context.Context, fs *flag.FlagSet, s *syncSuite, f syncFlags, stdout, stderr io.Writer) int {
	var misplaced []string
	fs.Visit(func(fl *flag.Flag) {
		if slices.Contains(defaultOnlyFlags, fl.Name) {
			misplaced = append(misplaced, "-"+fl.Name)
		}
	})
	if len(misplaced) > 0 {
		fmt.Fprintf(stderr, "bench: %s: only for -suite %s (the %s suite measures the initial sync only)\n",
			strings.Join(misplaced, ", "), SuiteDefault, s.name)
		return 2
	}
	if f.report != "" {
		if err := rerenderSync(s, f.report, f.out, stdout); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		return 0
	}
	cfg := ScopeConfig{Out: f.out, CPUProfile: f.cpuProfile, MemProfile: f.memProfile, Workers: f.workers}
	return runSuite(stderr, s.nsFlag(f.ns, f.nsSet), f.runs, func(ns, runs []int) error {
		cfg.Ns, cfg.Runs = ns, runs
		if err := cfg.validate(); err != nil {
			return err
		}
		if ns[0] < s.minN {
			return fmt.Errorf("-n: the %s suite needs at least %d objects, got %d", s.name, s.minN, ns[0])
		}
		return nil
	}, func() error { return runSyncSuite(ctx, cfg, s, stdout, stderr) })
}

// nsFlag is the value of -n that s measures: ns when set on the command line, else s's own default,
// if it has one.
func (s *syncSuite) nsFlag(ns string, set bool) string {
	if !set && s.defaultNs != "" {
		return s.defaultNs
	}
	return ns
}

// runSyncSuite starts a control plane, populates it for every N, measures every variant of s at
// every N (after s.before, if any) and writes the report: the tables (and targets) on stdout, and s's markdown, CSV and runs
// files into cfg.Out.
func runSyncSuite(ctx context.Context, cfg ScopeConfig, s *syncSuite, stdout, stderr io.Writer) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	ns, runs := cfg.Ns, cfg.Runs
	if len(runs) == 1 {
		runs = slices.Repeat(runs, len(ns))
	}
	bp, err := startSuite(cfg.Out, cfg.CPUProfile, cfg.MemProfile, s.runsFile, s.name+" suite", s.restartable, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if serr := bp.stop(); serr != nil && err == nil {
			err = serr
		}
	}()

	started := time.Now()
	var results []ScopeResult
	have := 0
	enc := json.NewEncoder(bp.runs)
	for i, n := range ns {
		fmt.Fprintf(stderr, "bench: N=%d: creating %s (%d workers)\n", n, s.counted, cfg.Workers)
		if have, err = s.populate(ctx, bp, have, n, cfg.Workers, stderr); err != nil {
			return err
		}
		if d, err := s.describe(ctx, bp, n); err == nil {
			fmt.Fprintf(stderr, "bench: %s\n", d)
		} else {
			fmt.Fprintf(stderr, "bench: %v\n", err)
		}
		for run := 1; run <= runs[i]; run++ {
			for _, v := range s.variants {
				if s.before != nil {
					step := suiteStep{bp: bp, variant: v, n: n, run: run, workers: cfg.Workers, log: stderr}
					if err := s.before(ctx, step); err != nil {
						return fmt.Errorf("N=%d run %d before %s: %w", n, run, v, err)
					}
				}
				args := []string{"-child", v, "-kubeconfig", bp.kubeconfig}
				if s.childArgs != nil {
					args = append(args, s.childArgs(bp, v)...)
				}
				res, err := measureSyncOne(ctx, cfg, s, v, n, run, args, stderr)
				if err != nil {
					return fmt.Errorf("N=%d run %d %s: %w", n, run, v, err)
				}
				results = append(results, res)
				if err := enc.Encode(res); err != nil {
					return fmt.Errorf("write %s: %w", s.runsFile, err)
				}
			}
		}
	}
	fmt.Fprintf(stderr, "bench: measured in %s\n", time.Since(started).Round(time.Second))
	return writeSyncReport(s, s.summarize(results), cfg.Out, stdout)
}

// measureSyncOne runs one child of variant v of s with args and waits for its result, which
// checkObjects checks.
func measureSyncOne(ctx context.Context, cfg ScopeConfig, s *syncSuite, v string, n, run int, args []string, stderr io.Writer) (res ScopeResult, err error) {
	c, err := launchChild(ctx, args, cfg.CPUProfile, cfg.MemProfile, v, n, run, stderr)
	if err != nil {
		return res, err
	}
	defer func() {
		if ferr := c.finish(err != nil, 30*time.Second); ferr != nil && err == nil {
			err = ferr
		}
	}()
	m, err := c.await(ctx, phaseDone, syncTimeout+time.Minute)
	if err != nil {
		return res, err
	}
	if m.Scope == nil {
		return res, fmt.Errorf("child reported %q without a result", phaseDone)
	}
	res = *m.Scope
	res.Variant, res.N, res.Run = v, n, run
	tag := fmt.Sprintf("bench: N=%d run %d %-17s", n, run, v)
	fmt.Fprintf(stderr, "%s: %d objects synced in %.3f s, CPU %.3f s, %.1f KiB received (%.1f KiB of bodies after gzip), heap %.1f MiB (peak %.1f)\n",
		tag, res.Objects, res.SyncSeconds, res.SyncCPU, float64(res.BytesReceived)/kib, float64(res.BodyBytes)/kib,
		float64(res.HeapSynced)/mib, float64(res.HeapPeakSync)/mib)
	if res.CheckpointBytes > 0 {
		fmt.Fprintf(stderr, "%s: checkpoint of %d bytes saved in %.1f ms\n", tag, res.CheckpointBytes, res.CheckpointSeconds*1000)
	}
	warning, err := s.checkObjects(res)
	if warning != "" {
		fmt.Fprintf(stderr, "%s: WARNING: %s\n", tag, warning)
	}
	return res, err
}

// checkObjects compares the objects res holds once synced (and, when s counts them, its deletes)
// with what s expects of its variant at its N: a difference is an error when s is exact, else a
// warning ("" when they agree).
func (s *syncSuite) checkObjects(res ScopeResult) (warning string, err error) {
	want := s.expected(res.Variant, res.N)
	var diff string
	switch {
	case res.Objects != want:
		diff = fmt.Sprintf("%d objects once synced, want %d", res.Objects, want)
	case s.expectedDeletes != nil && res.Deletes != s.expectedDeletes(res.Variant, res.N):
		diff = fmt.Sprintf("%d of the %d entries deletes, want %d", res.Deletes, res.Objects, s.expectedDeletes(res.Variant, res.N))
	default:
		return "", nil
	}
	if s.exact {
		return "", errors.New(diff)
	}
	return diff, nil
}

// rerenderSync reads the results of an earlier run of s from runsFile and writes the report into
// out. Another suite's runs file is refused (the default suite's fields are not a ScopeResult's;
// another sync suite's variants are not s's).
func rerenderSync(s *syncSuite, runsFile, out string, stdout io.Writer) error {
	results, err := loadRuns(runsFile, out, true, s.check)
	if err != nil {
		return err
	}
	return writeSyncReport(s, s.summarize(results), out, stdout)
}

// writeSyncReport prints the tables and targets of s and writes them, and the CSV, to out.
func writeSyncReport(s *syncSuite, t ScopeTable, out string, stdout io.Writer) error {
	var targets []Target
	if s.targets != nil {
		targets = s.targets(t)
	}
	return publishReport(t.Markdown, targets, out, s.markdownFile, stdout, reportFile{s.csvFile, t.CSV})
}
