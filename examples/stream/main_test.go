package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/watchlist-go/watchlist/internal/testenv"
)

// runTimeout bounds one run against a local control plane: start (~3 s), the duration, stop (~1 s).
const runTimeout = 2 * time.Minute

// runLocal runs the command against a local control plane (KUBEBUILDER_ASSETS must name the
// binaries, see `make envtest-assets`) and returns its stdout and stderr.
func runLocal(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	t.Setenv("KUBECONFIG", "") // never the developer's cluster
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("run %q: %v\nstderr:\n%s", args, err, errOut.String())
	}
	t.Logf("stderr:\n%s", errOut.String())
	return out.String(), errOut.String()
}

func TestStreamShowsAddsUpdatesDeletes(t *testing.T) {
	stdout, stderr := runLocal(t, "-duration", "6s")

	byChange := map[string]int{}
	podAdds := map[string]bool{}
	seen := map[string]bool{}
	for line := range strings.Lines(stdout) {
		fields := strings.Fields(line)
		if len(fields) != 4 || !strings.HasPrefix(fields[3], "rv=") {
			t.Fatalf("line %q: want change, kind, namespace/name, rv=resourceVersion", line)
		}
		if seen[line] {
			t.Errorf("line %q printed twice", line)
		}
		seen[line] = true
		byChange[fields[0]]++
		if fields[0] == "Add" && fields[1] == "Pod" {
			podAdds[fields[2]] = true
		}
	}
	for _, pod := range []string{"watchlist-demo/web-1", "watchlist-demo/web-2", "watchlist-demo/web-3", "watchlist-demo/churn-0"} {
		if !podAdds[pod] {
			t.Errorf("no Add line for pod %s", pod)
		}
	}
	if byChange["Update"] == 0 || byChange["Delete"] == 0 {
		t.Errorf("entries by change %v: want at least one Update and one Delete", byChange)
	}
	if !strings.Contains(stderr, "synced: ") {
		t.Errorf("stderr does not report the sync")
	}
	if strings.Contains(stdout, "control plane") {
		t.Errorf("progress messages on stdout")
	}
}

func TestUnknownTypeIsAUsageError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-types", "pod,bogus"}, &stdout, &stderr)
	if err == nil {
		t.Fatal("run with -types pod,bogus: no error")
	}
	if code := exitCode(err); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	for _, want := range []string{"-types", `"bogus"`, "known:", "Pod"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q, want nothing", stdout.String())
	}
}

func TestJSONOutputParses(t *testing.T) {
	// Services through -resources: entries of WithResources, converted from protobuf to unstructured.
	stdout, _ := runLocal(t, "-output", "json", "-types", "pod", "-resources", "services", "-duration", "3s")
	wantResource := map[string]string{"Pod": "v1/pods", "Service": "v1/services"}

	kinds := map[string]int{}
	for line := range strings.Lines(stdout) {
		var r map[string]string
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q is not a JSON object of strings: %v", line, err)
		}
		for _, key := range []string{"change", "kind", "resource", "namespace", "name", "uid", "resourceVersion"} {
			if _, ok := r[key]; !ok {
				t.Fatalf("line %q has no %q", line, key)
			}
		}
		if r["name"] == "" || r["uid"] == "" || r["resourceVersion"] == "" {
			t.Errorf("line %q: empty name, uid or resourceVersion", line)
		}
		if r["resource"] != wantResource[r["kind"]] {
			t.Errorf("line %q: resource %q, want %q", line, r["resource"], wantResource[r["kind"]])
		}
		kinds[r["kind"]]++
	}
	if kinds["Pod"] == 0 || kinds["Service"] == 0 || len(kinds) != 2 {
		t.Errorf("entries by kind %v: want Pods and Services only", kinds)
	}
}

func TestKubeconfigReadsThatCluster(t *testing.T) {
	plane, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := plane.Stop(); err != nil {
			t.Error(err)
		}
	})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := testenv.WriteKubeconfig(plane.Config, kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig) // the default of -kubeconfig

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"-types", "service,namespace", "-duration", "1s"}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("stderr:\n%s", stderr.String())
	for _, want := range []string{"Add    Service            default/kubernetes rv=", "Add    Namespace          kube-system rv="} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout has no line starting %q:\n%s", want, stdout.String())
		}
	}
	if strings.Contains(stderr.String(), "local control plane") || strings.Contains(stdout.String(), "watchlist-demo") {
		t.Errorf("run started a local control plane although KUBECONFIG was set")
	}
}

// TestScopeFlags: -namespaces, -selector and -metadata-only narrow what the demo reads, on a local
// control plane where the demo's fixtures carry testenv.FixtureLabel and the apiserver's own pods
// and namespaces do not.
func TestScopeFlags(t *testing.T) {
	stdout, _ := runLocal(t, "-types", "pod,namespace", "-namespaces", "watchlist-demo,default",
		"-selector", testenv.FixtureLabel+"=true", "-metadata-only", "-duration", "3s")
	kinds := map[string]int{}
	for line := range strings.Lines(stdout) {
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("line %q: want change, kind, namespace/name, rv=resourceVersion", line)
		}
		kinds[fields[1]]++
		if fields[1] == "Pod" && !strings.HasPrefix(fields[2], "watchlist-demo/") {
			t.Errorf("line %q: a pod outside -namespaces", line)
		}
		if fields[1] == "Namespace" && fields[2] != "watchlist-demo" {
			t.Errorf("line %q: a namespace without the fixture label", line)
		}
	}
	if kinds["Pod"] == 0 || kinds["Namespace"] == 0 {
		t.Errorf("entries by kind %v: want Pods and the demo's Namespace", kinds)
	}
}

// TestBadScopeFlags: a namespace that is not a name fails with a clear error, before any stream.
func TestBadScopeFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-namespaces", "a,Bad_NS"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "Bad_NS") || exitCode(err) != 2 {
		t.Fatalf("run -namespaces a,Bad_NS = %v, want a usage error naming Bad_NS", err)
	}
}

func TestBadResourcesFlag(t *testing.T) {
	for _, arg := range []string{"a/b/c/d", "apps//deployments", "v1/"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"-resources", arg}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "-resources") || exitCode(err) != 2 {
			t.Errorf("run -resources %s = %v, want a usage error about -resources", arg, err)
		}
	}
}

func TestParseResources(t *testing.T) {
	got, err := parseResources("stable.example.com/v1/widgets, configmaps,v1/secrets,apps/v1/statefulsets")
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.GroupVersionResource{
		{Group: "stable.example.com", Version: "v1", Resource: "widgets"},
		{Version: "v1", Resource: "configmaps"},
		{Version: "v1", Resource: "secrets"},
		{Group: "apps", Version: "v1", Resource: "statefulsets"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseResources = %v, want %v", got, want)
	}
}
