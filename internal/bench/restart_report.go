package bench

import (
	"fmt"
	"math"
	"strings"
)

// restartLabels are the column names of the restart variants.
var restartLabels = map[string]string{
	VariantCheckpointSave:  "checkpoint save",
	VariantReaderWarm:      "reader, warm",
	VariantReaderCold:      "reader, cold",
	VariantInformerRestart: "informer restart",
	VariantRestartFloor:    "floor",
	VariantReaderRelist:    "reader, relist",
	VariantReaderExpired:   "reader, warm after a 410",
}

// restartRelabeled are the labels the restart tables give ScopeMetrics' rows: a restart is not an
// initial sync, and what the children count are entries delivered.
var restartRelabeled = map[string]string{
	"objects":    "entries delivered (informer: objects in its store)",
	"sync_s":     "time to sync (WaitForSync / WaitForCacheSync)",
	"sync_cpu_s": "CPU until synced",
}

// onlyFor is value for the runs of variant v, NaN for the others: a row only v measures.
func onlyFor(v string, value func(ScopeResult) float64) func(ScopeResult) float64 {
	return func(r ScopeResult) float64 {
		if r.Variant != v {
			return math.NaN()
		}
		return value(r)
	}
}

// checkpointMetric is a row of the checkpoint-save variant only: NaN for the others.
func checkpointMetric(key, label, unit string, decimals int, value func(ScopeResult) float64) ScopeMetric {
	return ScopeMetric{key, label, unit, decimals, onlyFor(VariantCheckpointSave, value)}
}

// restartMetrics are the restart tables' rows at each N: ScopeMetrics relabeled, then what only
// the restart suite counts.
var restartMetrics = append(relabel(ScopeMetrics, restartRelabeled),
	ScopeMetric{"deletes", "entries that are deletes", "", 0, func(r ScopeResult) float64 {
		if r.Variant == VariantInformerRestart {
			return math.NaN() // not counted
		}
		return float64(r.Deletes)
	}},
	ScopeMetric{"complete_states", "complete-state requests (WatchList or paginated LIST)", "", 0,
		func(r ScopeResult) float64 { return float64(r.CompleteStates) }},
	checkpointMetric("checkpoint_kib", "checkpoint size", "KiB", 1, func(r ScopeResult) float64 { return float64(r.CheckpointBytes) / kib }),
	checkpointMetric("checkpoint_bytes_per_object", "checkpoint size per object", "B", 1, func(r ScopeResult) float64 {
		return ratio(float64(r.CheckpointBytes), float64(r.Objects))
	}),
	ScopeMetric{"relist_entries", "entries of one quiet Reader.Relist once synced", "", 0, onlyFor(VariantReaderRelist, func(r ScopeResult) float64 {
		return float64(r.RelistEntries)
	})},
	ScopeMetric{"relist_s", "time of that relist", "s", 3, onlyFor(VariantReaderRelist, func(r ScopeResult) float64 { return r.RelistSeconds })},
	ScopeMetric{"state_cpu_s", "CPU to take a complete state (floor: its WatchList; relist: the relist; warm after a 410: the whole restart)", "s", 3,
		func(r ScopeResult) float64 {
			switch r.Variant {
			case VariantRestartFloor, VariantReaderExpired:
				return r.SyncCPU
			case VariantReaderRelist:
				return r.RelistCPU
			}
			return math.NaN()
		}},
	checkpointMetric("checkpoint_save_ms", "Reader.Checkpoint: snapshot, encode, write, fsync", "ms", 1,
		func(r ScopeResult) float64 { return r.CheckpointSeconds * 1000 }),
)

// relabel returns a copy of metrics with the labels of labels (metric key → label).
func relabel(metrics []ScopeMetric, labels map[string]string) []ScopeMetric {
	out := make([]ScopeMetric, len(metrics))
	for i, m := range metrics {
		if l, ok := labels[m.Key]; ok {
			m.Label = l
		}
		out[i] = m
	}
	return out
}

// restartLayout is the restart suite's report: the three restarts side by side, then the saving
// child's checkpoint.
var restartLayout = syncLayout{
	intro: "Restart suite: medians of %s per variant and N, each run in its own process, pods only. " +
		fmt.Sprintf("In every run a child first saves a checkpoint at N pods; the parent then updates 1/%d of the pods "+
			"(a label) and deletes as many (none created); then the warm and cold readers, the informer, the floor and the relisting reader "+
			"read what is left, and last, once the parent restarted kube-apiserver, the warm reader whose resume point expired. ", restartShare) +
		"Every reader's out channel is unbuffered and drained, nothing kept. " + bytesNote,
	counted:  "pods",
	variants: restartVariants,
	labels:   restartLabels,
	metrics:  restartMetrics,
	sections: []scopeSection{
		{
			Title: "Warm restart against a cold start and an informer restart",
			Note: fmt.Sprintf("*reader, warm*: `watchlist.New(ctx, cs, RTPod, WithCheckpoint(FileCheckpoint(path), time.Hour))` "+
				"started from the checkpoint saved before the change set: it resumes its watch from the checkpoint's resourceVersion "+
				"and delivers the change set (each update one entry, each delete %d: the apiserver sets the pod's deletionTimestamp, "+
				"then removes it); `WaitForSync` returns once the resumed watch caught up (an event at or past where the server stood "+
				"when it began, which a LIST of one object tells, or 250 ms without an event). *reader, cold*: the same reader "+
				"without a checkpoint. *informer restart*: a client-go typed pod informer started fresh (its handlers get an add per pod). "+
				"Every run's counts are checked exactly: the suite fails otherwise.", eventsPerDelete),
			Variants: []string{VariantReaderWarm, VariantReaderCold, VariantInformerRestart},
			Ratios:   []scopeRatio{{VariantReaderWarm, VariantReaderCold}, {VariantReaderWarm, VariantInformerRestart}},
			Metrics: []string{"objects", "deletes", "sync_s", "sync_cpu_s", "received_kib", "body_kib", "complete_states",
				"heap_peak_sync_mib", "heap_synced_mib"},
		},
		{
			Title: "A complete state diffed: after a 410, and a quiet relist, against the floor",
			Note: "*floor*: the reader's WatchList request for every pod, its body read up to the end bookmark with only the watch " +
				"envelopes decoded: what the server, the network, TLS and gzip cost at least. *reader, relist*: *reader, cold* " +
				"that, once synced, calls `Reader.Relist` on the quiet cluster: a new WatchList for every pod, diffed against what " +
				"was delivered (0 entries expected). *reader, warm after a 410*: *reader, warm* started from the same checkpoint " +
				"(saved before the change set) after the parent restarted kube-apiserver, whose new watch cache no longer serves the " +
				"checkpoint's resourceVersion: the resumed watch gets 410 Expired, the reader asks for a WatchList not older than " +
				"it and diffs it against the checkpoint, delivering each changed pod once as an update and each deleted pod as a " +
				"synthesized delete. The reader decodes only the objects it delivers (their identity and resourceVersion are " +
				"read from the protobuf bytes). Target: both at most 1.5 times the floor's CPU.",
			Variants: []string{VariantRestartFloor, VariantReaderRelist, VariantReaderExpired},
			Ratios:   []scopeRatio{{VariantReaderRelist, VariantRestartFloor}, {VariantReaderExpired, VariantRestartFloor}},
			Metrics: []string{"objects", "deletes", "complete_states", "sync_s", "sync_cpu_s", "relist_entries", "relist_s",
				"state_cpu_s", "received_kib", "heap_synced_mib"},
		},
		{
			Title: "Saving the checkpoint",
			Note: "*checkpoint save*: the reader with `WithCheckpoint` synced from no checkpoint at N pods; then one " +
				"`Reader.Checkpoint(ctx)` is timed (snapshot of the filter, encoding, FileCheckpoint's temporary file, fsync, " +
				"rename and fsync of the folder) and the file's size taken. Its `Close` saves the checkpoint the warm reader starts from.",
			Variants: []string{VariantCheckpointSave},
			Metrics: []string{"objects", "sync_s", "sync_cpu_s", "heap_synced_mib", "checkpoint_kib", "checkpoint_bytes_per_object",
				"checkpoint_save_ms"},
		},
	},
}

// SummarizeRestart takes the median of every metric over the runs of each variant of the restart
// suite at each N.
func SummarizeRestart(results []ScopeResult) ScopeTable {
	return summarizeSync(results, &restartLayout)
}

// restartStateLimit: a complete state diffed against what was delivered (a quiet relist, a warm
// restart after a 410) costs at most this many times the floor's CPU.
const restartStateLimit = 1.5

// RestartTargets checks the restart suite's goal at every N measured: the CPU of a quiet relist and
// of a warm restart after a 410 at most restartStateLimit times the floor's.
func (t ScopeTable) RestartTargets() []Target {
	check := func(name, v string) Target {
		var at []string
		met := len(t.Ns()) > 0
		for _, n := range t.Ns() {
			r, _ := t.Get(n, "state_cpu_s")
			q := r.Ratio(v, VariantRestartFloor)
			met = met && !math.IsNaN(q) && q <= restartStateLimit
			at = append(at, fmt.Sprintf("%s vs %s s at %s (%s)", format(r.Value(v), 3), format(r.Value(VariantRestartFloor), 3),
				format(float64(n), 0), formatRatio(q)))
		}
		detail := strings.Join(at, ", ")
		if len(at) == 0 {
			detail = errNoData.Error()
		}
		return Target{Name: name, Met: met, Detail: detail}
	}
	limit := format(restartStateLimit, 1)
	return []Target{
		check("CPU of a quiet relist <= "+limit+" x the floor's", VariantReaderRelist),
		check("CPU of a warm restart after a 410 <= "+limit+" x the floor's", VariantReaderExpired),
	}
}
