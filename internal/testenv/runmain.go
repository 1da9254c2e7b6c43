package testenv

import (
	"fmt"
	"os"
	"testing"
)

// RunMain is for TestMain: it starts a plane with opts, hands it to set (which may be nil),
// runs m.Run(), stops the plane and returns the exit code for os.Exit. When the plane cannot
// start (for instance the binaries are missing) it prints why and returns 1: tests never skip
// silently.
//
//	func TestMain(m *testing.M) {
//		os.Exit(testenv.RunMain(m, testenv.Options{}, func(p *testenv.Plane) { plane = p }))
//	}
func RunMain(m *testing.M, opts Options, set func(*Plane)) int {
	p, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if set != nil {
		set(p)
	}
	code := m.Run()
	if err := p.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
