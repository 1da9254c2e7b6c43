package stream

import (
	"context"
	"sync"

	"github.com/go-logr/logr"
)

// Warnings passes the warnings servers attach to responses (e.g. "v1 Endpoints is deprecated in
// v1.33+") to a log, each message once however many requests and streams draw it. It implements
// rest.WarningHandlerWithContext; one is shared by every stream of a reader.
type Warnings struct {
	log  logr.Logger
	mu   sync.Mutex // guards seen
	seen map[string]bool
}

// maxWarnings bounds the messages remembered (and logged): a server that names objects in its
// warnings must not grow the set without bound.
const maxWarnings = 100

// NewWarnings returns Warnings that log at log's level.
func NewWarnings(log logr.Logger) *Warnings {
	return &Warnings{log: log, seen: make(map[string]bool)}
}

// HandleWarningHeaderWithContext logs message the first time it is seen.
func (w *Warnings) HandleWarningHeaderWithContext(_ context.Context, code int, agent string, message string) {
	if code != 299 || message == "" {
		return
	}
	w.mu.Lock()
	first := !w.seen[message] && len(w.seen) < maxWarnings
	if first {
		w.seen[message] = true
	}
	last := first && len(w.seen) == maxWarnings
	w.mu.Unlock()
	if first {
		w.log.Info("the server warned (logged once)", "warning", message, "agent", agent)
	}
	if last {
		w.log.Info("the server warned of many things; further warnings are not logged", "logged", maxWarnings)
	}
}
