// Command stream prints the entries of a watchlist reader on stdout, one line each: every object of
// the chosen kinds once as an Add, then every change as it happens.
//
// With a kubeconfig (-kubeconfig, or $KUBECONFIG) it reads that cluster and changes nothing. Without
// one it starts a local control plane (kube-apiserver and etcd from $KUBEBUILDER_ASSETS), creates a
// few objects in the namespace watchlist-demo, and changes some of them every second, so that adds,
// updates and deletes show. `make demo` builds and runs it.
//
// Entries go to stdout and everything else to stderr, so the output pipes well:
//
//	stream -types pod,rbac -output json | jq -c 'select(.change == "Delete")'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGPIPE is caught too, so that a closed pipe on stdout (| head) stops the program cleanly,
	// control plane included, instead of killing it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "stream: %v\n", err)
	}
	os.Exit(exitCode(err))
}

// exitCode maps run's error to the process's exit status: 0 on success or -h, 2 for a bad
// command line, 1 for anything else.
func exitCode(err error) int {
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		return 2
	default:
		return 1
	}
}

// run does the work of main: it parses args, reads the cluster named by the kubeconfig or else a
// local control plane it starts, and prints entries on stdout until ctx ends or -duration passed.
// Everything but entries goes to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	s := &session{
		cfg:     cfg,
		printer: newPrinter(cfg.output, stdout),
		stderr:  stderr,
		log:     newLogger(stderr, cfg.verbosity),
	}
	if cfg.kubeconfig != "" {
		return s.runRemote(ctx)
	}
	return s.runLocal(ctx)
}
