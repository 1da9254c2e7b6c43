package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// childProc is a running child: the benchmark binary re-executed with -child.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	msgs  chan message // the child's stdout, one message per line; closed at EOF
	read  sync.WaitGroup
	rerr  error // why reading stopped early, set before msgs is closed
}

// startChild starts the child with args, its stderr going to stderr.
func startChild(args []string, stderr io.Writer) (*childProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("child stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("child stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child %v: %w", args, err)
	}
	c := &childProc{cmd: cmd, stdin: stdin, msgs: make(chan message, 4)}
	c.read.Go(func() {
		defer close(c.msgs)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var m message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				c.rerr = fmt.Errorf("child wrote %q: %w", sc.Text(), err)
				_, _ = io.Copy(io.Discard, stdout) // let the child finish writing
				return
			}
			c.msgs <- m
		}
		c.rerr = sc.Err()
	})
	return c, nil
}

// send writes one command line to the child.
func (c *childProc) send(cmd string) error {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return fmt.Errorf("send %q to child: %w", cmd, err)
	}
	return nil
}

// await waits for the child's next message, which must be phase, for at most timeout.
func (c *childProc) await(ctx context.Context, phase string, timeout time.Duration) (message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return message{}, fmt.Errorf("waiting for child's %q: %w", phase, ctx.Err())
	case <-t.C:
		return message{}, fmt.Errorf("child did not report %q within %s", phase, timeout)
	case m, ok := <-c.msgs:
		switch {
		case !ok && c.rerr != nil:
			return message{}, fmt.Errorf("waiting for child's %q: %w", phase, c.rerr)
		case !ok:
			return message{}, fmt.Errorf("child exited before reporting %q", phase)
		case m.Phase == phaseError:
			return message{}, fmt.Errorf("child failed: %s", m.Error)
		case m.Phase != phase:
			return message{}, fmt.Errorf("child reported %q, want %q", m.Phase, phase)
		}
		return m, nil
	}
}

// finish closes the child's stdin and waits for it to exit; when it has not exited within grace
// (or kill is set) it is killed. The reading goroutine has ended when finish returns.
func (c *childProc) finish(kill bool, grace time.Duration) error {
	_ = c.stdin.Close() // the child exits at EOF if it still waits for a command
	if kill {
		_ = c.cmd.Process.Kill()
	}
	drained := make(chan struct{})
	var drain sync.WaitGroup
	drain.Go(func() {
		defer close(drained)
		for range c.msgs { // discard what is left
		}
	})
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-drained
	}
	drain.Wait()
	c.read.Wait()
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if kill && errors.As(err, &exit) {
		return nil // killed on purpose
	}
	if err != nil {
		return fmt.Errorf("child: %w", err)
	}
	return nil
}
