// Package watchlist gives a Go service a live, cheap view of a Kubernetes cluster: one channel of
// typed change entries (add, update, delete) for every kind it asks for.
//
// A Reader opens one WatchList stream per resource (a watch with sendInitialEvents=true, whose
// initial state ends at the k8s.io/initial-events-end bookmark) and merges them, through a filter
// keyed by object identity and resourceVersion, into the one channel given to SetOut. Where an
// informer keeps every object in memory, the filter keeps only identity → resourceVersion: 80 to 100
// bytes plus namespace and name per object, as measured; the objects themselves belong to the consumer.
//
//	r, err := watchlist.New(ctx, clientset, watchlist.RTPod|watchlist.RTNode, watchlist.WithLogger(log))
//	out := make(chan watchlist.Entry, 64)
//	err = r.SetOut(ctx, out)
//	err = r.Run(ctx)          // every stream open, or Forbidden / not served naming the resource
//	err = r.WaitForSync(ctx)  // every existing object delivered once, as an add
//	for e := range out { … }  // until Close, which closes out once
//
// # What the output stream promises
//
//  1. Every existing object of every enabled kind arrives once, as reader.CTAdd.
//  2. Then every change, each object's versions in order.
//  3. No (UID, resourceVersion) twice, across reconnects and relists; a synthesized delete (5)
//     carries the last version delivered.
//  4. Never an older resourceVersion of an object after a newer one.
//  5. After any gap (a dropped connection, 410 Gone, a relist, a server restart) the stream converges
//     to the server, and an object deleted during the gap arrives as reader.CTDelete carrying an
//     object of its kind with namespace, name, UID and last resourceVersion.
//  6. A relist of a cluster where nothing changed delivers nothing.
//
// # How each stream keeps them
//
// A watch that ends normally resumes from the last bookmark or event, with no replay. When the
// server no longer serves that point (410), the stream asks for the complete state again and the
// filter diffs it against what was delivered: an object the complete state at resourceVersion S
// does not hold, and whose last version delivered is not newer than S, was deleted. A server that
// refuses or ignores WatchList (the feature gate off, too old, a proxy that drops the parameter, an
// ERROR event before the end bookmark) gets a paged LIST and a WATCH from its resourceVersion, with
// the same diff, logged once per stream. The promises assume integer resourceVersions, as
// kube-apiserver writes, and an etcd restored with --bump-revision (README: "What the output stream
// promises"). Connection errors, 429 and 5xx are
// retried with exponential backoff and jitter (0.8 s doubling to 30 s, each plus up to 50% jitter, starting over
// after two minutes without a failure).
//
// Requests for built-in kinds ask for protobuf whatever the rest.Config's ContentType says: the
// reader reads each object's namespace, name, UID and resourceVersion from its bytes and decodes it
// only when it delivers it, so a relist, a 410's re-sync or a warm restart after a 410 decodes only
// what changed. Custom resources are JSON, decoded whole (BENCHMARKS.md).
//
// Sends on the output channel block: the consumer sets the pace, and nothing is buffered without
// bound. WithRelist (or Relist) builds a fresh set of streams beside the current one and swaps it
// in atomically once it has the complete state. WithMetrics exports Prometheus metrics.
//
// WithResources reads any other resource the server serves, custom resources too, as
// *unstructured.Unstructured entries of ObjectType OTResource that name their resource. After a
// 410, a stream asks for a complete state not older than the point that expired, so that a replica
// of a highly available control plane whose watch cache is behind answers "too large resource
// version" rather than serve an older state. WithCheckpoint saves what was delivered and where each
// stream stood; a reader started from such a checkpoint delivers only what changed while it was
// down, deletes included (README: "Restarts").
//
// Package reader holds the entry types; testdata/rbac.yaml the exact ClusterRole a reader needs.
package watchlist
