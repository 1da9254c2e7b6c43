package main

import (
	"context"
	"fmt"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// userAgent is how the demo names itself to the apiserver.
const userAgent = "watchlist-stream-example"

// runRemote streams the cluster named by s.cfg.kubeconfig (its current context). It only reads.
func (s *session) runRemote(ctx context.Context) error {
	cfg, where, err := loadKubeconfig(s.cfg.kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("build clientset for %s: %w", cfg.Host, err)
	}
	s.say("reading the cluster of %s", where)
	return s.stream(ctx, cs, nil)
}

// loadKubeconfig loads the current context of a kubeconfig path, or of a list of paths joined like
// $KUBECONFIG (merged as kubectl does). It returns the config and a description for humans.
func loadKubeconfig(paths string) (*rest.Config, string, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(paths)}
	if len(rules.Precedence) == 1 {
		// One file: it must exist (in a list, missing files are skipped, as kubectl does).
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: paths}
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig %s: %w", paths, err)
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig %s: %w", paths, err)
	}
	cfg = rest.AddUserAgent(cfg, userAgent)
	return cfg, fmt.Sprintf("context %q (%s) in %s", raw.CurrentContext, cfg.Host, paths), nil
}
