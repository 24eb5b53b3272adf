package apikeyhttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-apikey/apikey"
)

// ErrClientClosed reports that the client closed the request (its
// connection, or its HTTP/2 stream) before the answer: the call that
// failed was cancelled with the request's context, and no store or rate
// limiter failed. Status answers it 499 client_closed_request, the
// convention of nginx, which the client never reads but a request log
// does: an operator sees a client that went away, not a failure of the
// service (503).
var ErrClientClosed = errors.New("apikeyhttp: the client closed the request")

// CodeClientClosed stands for ErrClientClosed (499).
const CodeClientClosed apikey.Code = "client_closed_request"

// StatusClientClosed is the status of ErrClientClosed, nginx's.
const StatusClientClosed = 499

// ClientClosed returns err wrapped in ErrClientClosed when it is the
// cancellation of r's context (the client went away, or the server is
// shutting down and cancelled it), else err unchanged. A deadline that
// passed is not a client's doing (a timeout of the service's own, such as
// http.TimeoutHandler's): it stays a failure to decide (503).
func ClientClosed(r *http.Request, err error) error {
	if err == nil || !errors.Is(r.Context().Err(), context.Canceled) || !errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrClientClosed, err)
}
