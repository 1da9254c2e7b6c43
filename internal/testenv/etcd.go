package testenv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxEtcdReply bounds how much of an etcd grpc-gateway reply is read.
const maxEtcdReply = 1 << 20

// CompactEtcd compacts etcd (physically) at its current revision and returns that revision.
// It talks to etcd's grpc-gateway with net/http: POST /v3/kv/range for the revision, then
// POST /v3/kv/compaction. With the watch cache off for a resource (e.g. APIServerFlags
// {"watch-cache-sizes": "pods#0"}), a watch resumed from an RV at least 2 below the returned
// revision then gets 410 Expired; with the watch cache on, compaction does not cause a 410.
// Compacting again with no write in between succeeds and returns the same revision.
func (p *Plane) CompactEtcd(ctx context.Context) (int64, error) {
	base, hc, err := p.etcdGateway()
	if err != nil {
		return 0, err
	}
	var got struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	rangeReq := map[string]any{"key": base64.StdEncoding.EncodeToString([]byte("a"))}
	if err := etcdPost(ctx, hc, base+"/v3/kv/range", rangeReq, &got); err != nil {
		return 0, err
	}
	rev, err := strconv.ParseInt(got.Header.Revision, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("testenv: etcd revision %q: %w", got.Header.Revision, err)
	}

	compactReq := map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}
	err = etcdPost(ctx, hc, base+"/v3/kv/compaction", compactReq, nil)
	var reply *etcdReplyError
	if errors.As(err, &reply) && strings.Contains(reply.Body, "required revision has been compacted") {
		return rev, nil // already compacted at rev: nothing was written since
	}
	if err != nil {
		return 0, err
	}
	return rev, nil
}

// BumpEtcdRevision writes a key of its own to etcd (no Kubernetes object), which moves etcd's
// revision: an apiserver whose watch cache starts after it no longer has a resourceVersion from
// before it (a resume from there gets 410).
func (p *Plane) BumpEtcdRevision(ctx context.Context) error {
	base, hc, err := p.etcdGateway()
	if err != nil {
		return err
	}
	put := map[string]any{
		"key":   base64.StdEncoding.EncodeToString([]byte("/testenv/bump")),
		"value": base64.StdEncoding.EncodeToString([]byte("x")),
	}
	return etcdPost(ctx, hc, base+"/v3/kv/put", put, nil)
}

// etcdGateway returns the base URL of etcd's grpc-gateway and a client of its own, without
// keep-alive, which leaves no idle connection (or goroutine) behind.
func (p *Plane) etcdGateway() (string, *http.Client, error) {
	etcd := p.Env.ControlPlane.Etcd
	if etcd == nil || etcd.URL == nil {
		return "", nil, errors.New("testenv: etcd is not running")
	}
	return strings.TrimSuffix(etcd.URL.String(), "/"), &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}, nil
}

// etcdReplyError is a non-200 reply from etcd's grpc-gateway.
type etcdReplyError struct {
	URL, Status, Body string
}

// Error implements error.
func (e *etcdReplyError) Error() string {
	return fmt.Sprintf("testenv: POST %s: %s: %s", e.URL, e.Status, e.Body)
}

// etcdPost posts body as JSON to url and decodes a 200 reply into out (when out is not nil).
func etcdPost(ctx context.Context, hc *http.Client, url string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("testenv: encode etcd request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("testenv: etcd request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("testenv: POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxEtcdReply))
	if err != nil {
		return fmt.Errorf("testenv: read reply of POST %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &etcdReplyError{URL: url, Status: resp.Status, Body: string(bytes.TrimSpace(reply))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("testenv: decode reply of POST %s: %w", url, err)
	}
	return nil
}
