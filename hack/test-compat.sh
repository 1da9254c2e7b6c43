#!/usr/bin/env bash
# test-compat.sh runs the end-to-end and fault tests against kube-apiserver at the newest patch of
# every minor from 1.29 to 1.37 that the Go module proxy serves, each built by envtest-assets.sh and
# cached beside the others, and prints one line per version. It takes long (a cold build is about
# 5 min per version) and says what it is doing. COMPAT_VERSIONS="1.33.13 1.37.2" narrows it.
set -uo pipefail
cd "$(dirname "$0")/.."
VERSIONS=${COMPAT_VERSIONS:-"1.29.6 1.30.14 1.31.14 1.32.13 1.33.13 1.34.4 1.35.4 1.36.3 1.37.2"}
# The kinds, connection cuts, 410, apiserver restart, relist, fallback, custom resources and the
# highly available control plane: not the whole suite.
TESTS='^(TestServerMode|TestEveryKind|TestConnectionsCutDuringChurn|TestExpiredResumeFindsDeletes|TestAPIServerRestartDuringChurn|TestQuietRelist|TestRelistDuringChurn|TestFallbackWhenWatchListIsOff|TestResourcesKeepEveryPromise|TestResourcesGapFindsDeletes|TestHighlyAvailableControlPlane)$'
LOGS=${COMPAT_LOGS:-bench-results/compat}
mkdir -p "$LOGS"
summary=()
failed_any=0
for v in $VERSIONS; do
  start=$SECONDS
  echo "== kube-apiserver v$v: assets" >&2
  if ! K8S_VERSION=$v hack/envtest-assets.sh; then
    summary+=("v$v  build failed (see above)")
    failed_any=1
    continue
  fi
  dir=$(K8S_VERSION=$v hack/envtest-assets.sh --print-dir)
  log="$LOGS/v$v.log"
  echo "== kube-apiserver v$v: tests (log: $log)" >&2
  KUBEBUILDER_ASSETS=$dir hack/with-progress.sh "testing against v$v" \
    go test -count=1 -v -timeout 30m -run "$TESTS" . >"$log" 2>&1
  rc=$?
  mode=$(grep -o 'compat: server [^ ]*: [A-Za-z+ ]*' "$log" | head -1 | sed 's/compat: server [^ ]*: //')
  passed=$(grep -c '^--- PASS' "$log")
  failed=$(grep '^--- FAIL' "$log" | awk '{print $3}' | paste -sd, -)
  result=PASS
  if [ $rc -ne 0 ]; then
    result="FAIL (${failed:-see log})"
    failed_any=1
  fi
  line=$(printf 'v%-8s reader: %-20s tests passed: %2d  %s  (%d s)' "$v" "${mode:-?}" "$passed" "$result" $((SECONDS - start)))
  echo "$line" >&2
  summary+=("$line")
done
echo
printf '%s\n' "${summary[@]}"
exit $failed_any
