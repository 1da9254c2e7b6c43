package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/watchlist-go/watchlist"
	"github.com/watchlist-go/watchlist/reader"
)

const (
	// defaultTypes is what -types watches unless told otherwise.
	defaultTypes = "pod,service,deployment,rbac,namespace"
	// localDuration is how long the demo streams on a local control plane when -duration is not set.
	localDuration = 20 * time.Second
)

// Output formats of -output.
const (
	outputText = "text"
	outputJSON = "json"
)

// config is the parsed command line.
type config struct {
	kubeconfig string              // "" reads a local control plane
	types      reader.RetrieveType // what to watch
	output     string              // outputText or outputJSON
	duration   time.Duration       // how long to stream after the initial state; 0: until ctx ends
	verbosity  int                 // the logger's V level

	resources     []schema.GroupVersionResource // read with WithResources, besides types
	namespaces    []string                      // namespaced kinds only in these; nil: every namespace
	labelSelector string                        // for every kind watched; "": none
	fieldSelector string                        // for every kind watched; "": none
	metadataOnly  bool                          // entries hold PartialObjectMetadata
}

// options returns the reader options the scope flags ask for.
func (c config) options() []watchlist.Option {
	var opts []watchlist.Option
	if c.namespaces != nil {
		opts = append(opts, watchlist.WithNamespaces(c.namespaces...))
	}
	if len(c.resources) > 0 {
		opts = append(opts, watchlist.WithResources(c.resources...))
	}
	if c.labelSelector != "" && c.types != 0 {
		opts = append(opts, watchlist.WithLabelSelector(c.types, c.labelSelector))
	}
	if c.fieldSelector != "" && c.types != 0 {
		opts = append(opts, watchlist.WithFieldSelector(c.types, c.fieldSelector))
	}
	if c.metadataOnly && c.types != 0 {
		opts = append(opts, watchlist.WithMetadataOnly(c.types))
	}
	return opts
}

// usageError is a bad command line; main exits with status 2 on it.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() + " (stream -h lists the flags)" }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// parseFlags parses args. It returns flag.ErrHelp after printing the usage on stderr for -h, and a
// usageError for anything it cannot accept.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned to the caller
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"),
		"kubeconfig of the cluster to read (default $KUBECONFIG); empty: start a local control plane from $KUBEBUILDER_ASSETS")
	types := fs.String("types", defaultTypes,
		"comma-separated kinds to watch: all, node, pod, namespace, persistentvolume, rbac, service, deployment, ingresscontroller, endpoint, endpointslice")
	output := fs.String("output", outputText,
		"text: one line per entry (change, kind, namespace/name, resourceVersion); json: one JSON object per line")
	duration := fs.Duration("duration", 0,
		fmt.Sprintf("how long to stream after the initial state; 0: until Ctrl-C (default %s on a local control plane)", localDuration))
	verbosity := fs.Int("v", 0, "log verbosity on stderr: 0 errors and fallbacks, 2 reconnects, 5 every event")
	namespaces := fs.String("namespaces", "", "comma-separated namespaces to read namespaced kinds in, one stream each (default every namespace)")
	labelSelector := fs.String("selector", "", "label selector for every kind watched, e.g. app=web (evaluated by the server)")
	fieldSelector := fs.String("field-selector", "", "field selector for every kind watched, e.g. spec.nodeName=n1 with -types pod")
	metadataOnly := fs.Bool("metadata-only", false, "read only metadata: entries hold PartialObjectMetadata")
	resources := fs.String("resources", "",
		"comma-separated resources to read too, built-in or custom, as group/version/resource (core: version/resource or resource for v1), e.g. stable.example.com/v1/widgets,configmaps; alone (no -types), only these")
	fs.Usage = func() {} // the flag package calls it on every error; the usage is printed for -h only

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stderr)
			return config{}, err
		}
		return config{}, &usageError{err: err}
	}
	if fs.NArg() > 0 {
		return config{}, usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg := config{kubeconfig: *kubeconfig, output: *output, duration: *duration, verbosity: *verbosity,
		labelSelector: *labelSelector, fieldSelector: *fieldSelector, metadataOnly: *metadataOnly}
	if isSet(fs, "namespaces") {
		cfg.namespaces = strings.Split(*namespaces, ",")
		for _, ns := range cfg.namespaces {
			if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
				return config{}, usagef("-namespaces: %q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
			}
		}
	}
	var err error
	if cfg.resources, err = parseResources(*resources); err != nil {
		return config{}, usagef("-resources: %w", err)
	}
	if len(cfg.resources) == 0 || isSet(fs, "types") {
		if cfg.types, err = reader.ParseRetrieveType(*types); err != nil {
			return config{}, usagef("-types: %w", err)
		}
	}
	if cfg.output != outputText && cfg.output != outputJSON {
		return config{}, usagef("-output %q: want %s or %s", cfg.output, outputText, outputJSON)
	}
	if cfg.duration < 0 {
		return config{}, usagef("-duration %s: must not be negative", cfg.duration)
	}
	if cfg.verbosity < 0 {
		return config{}, usagef("-v %d: must not be negative", cfg.verbosity)
	}
	if cfg.kubeconfig == "" && !isSet(fs, "duration") {
		cfg.duration = localDuration
	}
	return cfg, nil
}

// parseResources parses a comma-separated list of group/version/resource, version/resource (the
// core group) or resource (core v1).
func parseResources(s string) ([]schema.GroupVersionResource, error) {
	var out []schema.GroupVersionResource
	for _, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		var gvr schema.GroupVersionResource
		switch parts := strings.Split(field, "/"); len(parts) {
		case 1:
			gvr = schema.GroupVersionResource{Version: "v1", Resource: parts[0]}
		case 2:
			gvr = schema.GroupVersionResource{Version: parts[0], Resource: parts[1]}
		case 3:
			gvr = schema.GroupVersionResource{Group: parts[0], Version: parts[1], Resource: parts[2]}
		default:
			return nil, fmt.Errorf("%q: want group/version/resource", field)
		}
		if gvr.Version == "" || gvr.Resource == "" {
			return nil, fmt.Errorf("%q: want group/version/resource", field)
		}
		out = append(out, gvr)
	}
	return out, nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// printUsage prints what the command does and its flags.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `usage: stream [flags]

Prints a watchlist reader's entries on stdout, one per line: every object of the chosen kinds
once as an Add, then every change. With a kubeconfig it reads that cluster. Without one it
starts a local control plane (kube-apiserver + etcd from $KUBEBUILDER_ASSETS), creates objects
in the namespace watchlist-demo and changes some of them every second. Logs go to stderr.

flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
