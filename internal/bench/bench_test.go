package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"-help"}, 0},
		{[]string{"-n", "1000,x"}, 2},
		{[]string{"-n", "1000,10000", "-runs", "3,3,2"}, 2},
		{[]string{"-rate", "0"}, 2},
		{[]string{"-resync", "10ms"}, 2},
		{[]string{"stray"}, 2},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if got := Main(tt.args, &stdout, &stderr); got != tt.code {
			t.Errorf("Main(%q) = %d, want %d; stderr:\n%s", tt.args, got, tt.code, stderr.String())
		}
	}
	var stderr bytes.Buffer
	Main([]string{"-help"}, &bytes.Buffer{}, &stderr)
	for name := range hiddenFlags {
		if strings.Contains(stderr.String(), "\n  -"+name+" ") || strings.Contains(stderr.String(), "\n  -"+name+"\n") {
			t.Errorf("-help shows the hidden flag -%s:\n%s", name, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "-cpuprofile") {
		t.Errorf("-help lacks -cpuprofile:\n%s", stderr.String())
	}
}

func TestVariants(t *testing.T) {
	var names []string
	for _, v := range variants(true, true, true) {
		names = append(names, v.name)
	}
	if got := strings.Join(names, ","); got != "reader,informer,reader-json,informer-json,informer-stripped" {
		t.Errorf("variants = %s", got)
	}
	if got := len(variants(false, false, false)); got != 2 {
		t.Errorf("%d variants without extras", got)
	}
}

// A child that cannot start reports one error message on its stdout, and nothing else.
func TestChildReportsError(t *testing.T) {
	var out bytes.Buffer
	cfg := childConfig{mode: ModeReader, content: ContentDefault, kubeconfig: filepath.Join(t.TempDir(), "missing")}
	if err := runChild(context.Background(), cfg, strings.NewReader(""), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("child wrote %d lines:\n%s", len(lines), out.String())
	}
	var m message
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m.Phase != phaseError || !strings.Contains(m.Error, "kubeconfig") {
		t.Errorf("message %+v", m)
	}
}

func TestReadResultsRoundTrip(t *testing.T) {
	in := fakeResults([]int{1000, 10000}, 2, true)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range in {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	out, err := decodeRuns[Result](&b, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) || out[3] != in[3] {
		t.Errorf("read %d results, [3] = %+v; want %d, %+v", len(out), out[3], len(in), in[3])
	}
	if _, err := decodeRuns[Result](strings.NewReader("{\"n\": 1}\nnot json\n"), false, nil); err == nil {
		t.Error("garbage was accepted")
	}
}

func TestRerender(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs.jsonl")
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range fakeResults([]int{1000, 10000}, 1, false) {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(runs, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"-report", runs, "-out", filepath.Join(dir, "out")}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, name := range []string{"results.md", "results.csv", "heap.svg"} {
		if _, err := os.Stat(filepath.Join(dir, "out", name)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout.String(), "| 10,000 | heap once synced") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}
