package testenv

import (
	"context"
	"strings"

	"k8s.io/client-go/rest"
)

// endpointsDeprecation starts the warning the apiserver sends on every core/v1 Endpoints call.
const endpointsDeprecation = "v1 Endpoints is deprecated"

// quietEndpoints drops the Endpoints deprecation warning, which fixtures trigger on purpose,
// and logs every other warning as client-go does by default.
type quietEndpoints struct{}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (quietEndpoints) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, message string) {
	if strings.HasPrefix(message, endpointsDeprecation) {
		return
	}
	rest.WarningLogger{}.HandleWarningHeaderWithContext(ctx, code, agent, message)
}
