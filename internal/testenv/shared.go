package testenv

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// Shared is a control plane that a test package starts on the first test that needs it, so that
// tests which need none (go test -run TestFilter, go test -list .) run without KUBEBUILDER_ASSETS.
//
//	var shared = testenv.NewShared(testenv.Options{})
//	func TestMain(m *testing.M) { os.Exit(shared.RunMain(m)) }
//	func TestX(t *testing.T) { p := shared.Get(t); ... }
type Shared struct {
	opts Options

	mu    sync.Mutex // guards the fields below
	plane *Plane
	err   error // why the plane could not start; every later Get fails with it
}

// NewShared returns a Shared that will start a plane with opts.
func NewShared(opts Options) *Shared { return &Shared{opts: opts} }

// Get returns the plane, starting it on the first call; when it cannot start, t fails with why
// (tests never skip silently).
func (s *Shared) Get(t testing.TB) *Plane {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plane == nil && s.err == nil {
		t.Log("starting the shared control plane")
		s.plane, s.err = Start(s.opts)
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.plane
}

// RunMain is for TestMain: it runs m.Run() and then stops the plane if a test started it, and
// returns the exit code for os.Exit.
func (s *Shared) RunMain(m *testing.M) int {
	code := m.Run()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.plane != nil {
		if err := s.plane.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
