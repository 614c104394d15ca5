package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/onlinemart/mart/internal/auth"
	"github.com/wundergraph/graphql-go-tools/execution/graphql"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/ast"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/graphqlerrors"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/operationreport"
	"github.com/wundergraph/graphql-go-tools/v2/pkg/variablesvalidation"
)

// Error codes the router itself puts in extensions.code. Subgraph errors
// keep the subgraph's own code.
const (
	codeBadRequest          = "BAD_REQUEST"
	codeMethodNotAllowed    = "METHOD_NOT_ALLOWED"
	codeNotFound            = "NOT_FOUND"
	codeUnsupportedMedia    = "UNSUPPORTED_MEDIA_TYPE"
	codePayloadTooLarge     = "PAYLOAD_TOO_LARGE"
	codeParseFailed         = "GRAPHQL_PARSE_FAILED"
	codeValidationFailed    = "GRAPHQL_VALIDATION_FAILED"
	codeQueryLimitExceeded  = "QUERY_LIMIT_EXCEEDED"
	codeTooManyOperations   = "TOO_MANY_OPERATIONS"
	codeGatewayTimeout      = "GATEWAY_TIMEOUT"
	codeSubgraphUnavailable = "SUBGRAPH_UNAVAILABLE"
	codeBadGateway          = "BAD_GATEWAY"
	codeInternal            = "INTERNAL_SERVER_ERROR"
)

const graphqlPath = "/graphql"

type location struct {
	Line   uint32 `json:"line"`
	Column uint32 `json:"column"`
}

// gqlError is one entry of a response's errors, fields in spec order.
type gqlError struct {
	Message    string          `json:"message"`
	Locations  []location      `json:"locations,omitempty"`
	Path       json.RawMessage `json:"path,omitempty"`
	Extensions map[string]any  `json:"extensions,omitempty"`
}

func newError(code, format string, args ...any) gqlError {
	return gqlError{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
}

// requestError is a failure answered before or instead of execution.
type requestError struct {
	status int
	errs   []gqlError
}

func (e *requestError) Error() string { return e.errs[0].Message }

func fail(status int, code, format string, args ...any) *requestError {
	return &requestError{status: status, errs: []gqlError{newError(code, format, args...)}}
}

// gqlRequest is the GraphQL-over-HTTP request body.
type gqlRequest struct {
	Query         *string         `json:"query"`
	OperationName *string         `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// ServeHTTP serves /graphql: POST with a JSON body, GET for queries, and
// websocket upgrades for subscriptions (and any operation) over
// graphql-transport-ws or graphql-ws. It also serves /.well-known/jwks.json
// and, when enabled, the playground (playground.go).
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &trackingWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			//nolint:errorlint // net/http treats only the sentinel itself as an abort (==), so only that is passed on.
			if v == http.ErrAbortHandler {
				panic(v)
			}
			rt.log.ErrorContext(r.Context(), "panic serving GraphQL request", "panic", v, "stack", string(debug.Stack()))
			if !rw.wroteHeader {
				writeErrors(rw, http.StatusInternalServerError, newError(codeInternal, "internal server error"))
			}
		}
	}()

	if rt.servePlayground(rw, r) {
		return
	}
	switch r.URL.Path {
	case graphqlPath:
	case jwksPath:
		rt.serveJWKS(rw, r)
		return
	default:
		writeErrors(rw, http.StatusNotFound, newError(codeNotFound, "no GraphQL endpoint at %s; use %s", r.URL.Path, graphqlPath))
		return
	}
	// Before anything is parsed or planned, so a bad token reaches no
	// subgraph. This covers the websocket upgrade's header too.
	principal, err := rt.authenticate(r.Context(), r.Header.Values("Authorization"))
	if err != nil {
		auth.Unauthorized(rw, err.Error())
		return
	}
	if isWebsocketUpgrade(r) {
		rw.wroteHeader = true // hijacked: nothing more may be written the HTTP way
		rt.serveWebsocket(w, r, principal)
		return
	}

	req, err := rt.readRequest(rw, r)
	if err != nil {
		rt.writeRequestError(rw, err)
		return
	}
	rt.execute(rw, r, req)
}

type trackingWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *trackingWriter) WriteHeader(status int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// operation is a request that parsed and is ready to execute.
type operation struct {
	query         string
	operationName string
	variables     json.RawMessage
	doc           *ast.Document
	opType        ast.OperationType
}

// readRequest reads the operation of a POST body or a GET's parameters and
// parses it; a requestError says why it will not run.
func (rt *Router) readRequest(w http.ResponseWriter, r *http.Request) (*operation, error) {
	var body gqlRequest
	var err error
	switch r.Method {
	case http.MethodPost:
		body, err = rt.readBody(w, r)
	case http.MethodGet:
		body, err = readQueryParameters(r)
	default:
		w.Header().Set("Allow", "GET, POST")
		return nil, fail(http.StatusMethodNotAllowed, codeMethodNotAllowed, "method %s is not allowed; use POST, or GET for queries", r.Method)
	}
	if err != nil {
		return nil, err
	}

	if body.Query == nil || strings.TrimSpace(*body.Query) == "" {
		return nil, fail(http.StatusBadRequest, codeBadRequest, "request has no query")
	}
	op := &operation{query: *body.Query}
	if body.OperationName != nil {
		op.operationName = *body.OperationName
	}
	// The engine validates variables only when there are some: send {} so
	// that a missing required variable is reported, not passed on as null.
	op.variables = json.RawMessage("{}")
	if v := bytes.TrimSpace(body.Variables); len(v) > 0 && !bytes.Equal(v, []byte("null")) {
		if v[0] != '{' {
			return nil, fail(http.StatusBadRequest, codeBadRequest, "variables must be a JSON object")
		}
		op.variables = v
	}

	doc, rerr := rt.parseOperation(op.query, op.operationName, op.variables)
	if rerr != nil {
		return nil, rerr
	}
	op.doc = doc
	op.opType = operationType(op.doc, op.operationName)
	switch {
	case r.Method == http.MethodGet && op.opType == ast.OperationTypeMutation:
		w.Header().Set("Allow", "POST")
		return nil, fail(http.StatusMethodNotAllowed, codeMethodNotAllowed, "mutations must be sent with POST")
	case op.opType == ast.OperationTypeSubscription:
		return nil, fail(http.StatusBadRequest, codeBadRequest, "subscriptions need a websocket connection (graphql-transport-ws or graphql-ws) to %s", graphqlPath)
	}
	return op, nil
}

// readBody reads a POST's JSON body, within the body limit.
func (rt *Router) readBody(w http.ResponseWriter, r *http.Request) (gqlRequest, error) {
	var body gqlRequest
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// Only JSON: a form or text/plain POST could be a cross-site
		// request forgery that browsers send without a CORS preflight.
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && mt != "application/graphql-response+json" {
			return body, fail(http.StatusUnsupportedMediaType, codeUnsupportedMedia, "Content-Type must be application/json")
		}
	}
	if r.ContentLength > rt.opts.MaxBodyBytes && rt.opts.MaxBodyBytes > 0 {
		return body, tooLarge(rt.opts.MaxBodyBytes)
	}
	src := io.Reader(r.Body)
	if rt.opts.MaxBodyBytes > 0 {
		src = http.MaxBytesReader(w, r.Body, rt.opts.MaxBodyBytes)
	}
	raw, err := io.ReadAll(src)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return body, tooLarge(rt.opts.MaxBodyBytes)
		}
		return body, fail(http.StatusBadRequest, codeBadRequest, "could not read request body")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		return body, fail(http.StatusBadRequest, codeBadRequest, "batched requests are not supported")
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return body, fail(http.StatusBadRequest, codeBadRequest, "request body is not a valid JSON object: %s", jsonProblem(err))
	}
	return body, nil
}

// readQueryParameters reads a GET's query, operationName and variables.
func readQueryParameters(r *http.Request) (gqlRequest, error) {
	var body gqlRequest
	q := r.URL.Query()
	if q.Has("query") {
		s := q.Get("query")
		body.Query = &s
	}
	if q.Has("operationName") {
		s := q.Get("operationName")
		body.OperationName = &s
	}
	if v := q.Get("variables"); v != "" {
		if !json.Valid([]byte(v)) {
			return body, fail(http.StatusBadRequest, codeBadRequest, "variables parameter is not valid JSON")
		}
		body.Variables = json.RawMessage(v)
	}
	return body, nil
}

func tooLarge(limit int64) *requestError {
	return fail(http.StatusRequestEntityTooLarge, codePayloadTooLarge, "request body exceeds the limit of %d bytes", limit)
}

// jsonProblem describes a JSON decoding error without echoing Go type names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", typ.Field)
		}
		return "expected an object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "malformed"
}

// operationType returns the type of the operation that would run; Unknown
// when the document does not pick exactly one (validation reports that).
func operationType(doc *ast.Document, name string) ast.OperationType {
	found := ast.OperationTypeUnknown
	n := 0
	for _, node := range doc.RootNodes {
		if node.Kind != ast.NodeKindOperationDefinition {
			continue
		}
		if name == "" || doc.OperationDefinitionNameString(node.Ref) == name {
			found = doc.OperationDefinitions[node.Ref].OperationType
			n++
		}
	}
	if n != 1 {
		return ast.OperationTypeUnknown
	}
	return found
}

func reportErrors(report operationreport.Report, code string) []gqlError {
	var out []gqlError
	for _, e := range report.ExternalErrors {
		ge := newError(code, "%s", e.Message)
		for _, l := range e.Locations {
			ge.Locations = append(ge.Locations, location{Line: l.Line, Column: l.Column})
		}
		out = append(out, ge)
	}
	if len(out) == 0 {
		out = append(out, newError(code, "invalid GraphQL document"))
	}
	return out
}

func (rt *Router) execute(w http.ResponseWriter, r *http.Request, op *operation) {
	ctx, cancel := context.WithTimeout(r.Context(), rt.opts.RequestTimeout)
	defer cancel()

	req := graphql.Request{Query: op.query, OperationName: op.operationName, Variables: op.variables}
	req.SetHeader(r.Header)
	var buf bytes.Buffer
	out := graphql.NewEngineResultWriterFromBuffer(&buf)
	rt.executions.Add(1)
	err := rt.engine.Execute(ctx, &req, &out)
	// By the clock: a fetch that hit the deadline can return before the
	// context's own timer has fired, while ctx.Err() is still nil.
	deadline, _ := ctx.Deadline()
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) || !time.Now().Before(deadline)
	if err != nil {
		if timedOut {
			writeErrors(w, http.StatusGatewayTimeout, rt.timeoutError())
			return
		}
		rt.writeRequestError(w, rt.classify(r.Context(), err))
		return
	}

	status, resp := rt.finishResponse(buf.Bytes(), timedOut)
	writeJSON(w, status, resp)
}

func (rt *Router) timeoutError() gqlError {
	return newError(codeGatewayTimeout, "request did not complete within %s", rt.opts.RequestTimeout)
}

// classify turns an error returned by the engine before execution into a
// client response: validation problems are the client's, anything else is
// ours and is logged, not shown.
func (rt *Router) classify(ctx context.Context, err error) *requestError {
	var reqErrs graphqlerrors.RequestErrors
	var report operationreport.Report
	var varErr *variablesvalidation.InvalidVariableError
	switch {
	case errors.As(err, &reqErrs):
		out := make([]gqlError, 0, len(reqErrs))
		for _, e := range reqErrs {
			ge := newError(codeValidationFailed, "%s", e.Message)
			for _, l := range e.Locations {
				ge.Locations = append(ge.Locations, location{Line: l.Line, Column: l.Column})
			}
			out = append(out, ge)
		}
		return &requestError{status: http.StatusBadRequest, errs: out}
	case errors.As(err, &report) && len(report.ExternalErrors) > 0:
		return &requestError{status: http.StatusBadRequest, errs: reportErrors(report, codeValidationFailed)}
	case errors.As(err, &varErr):
		return fail(http.StatusBadRequest, codeValidationFailed, "%s", varErr.Message)
	}
	rt.log.ErrorContext(ctx, "GraphQL execution failed", "err", err)
	return fail(http.StatusInternalServerError, codeInternal, "internal server error")
}

func (rt *Router) writeRequestError(w http.ResponseWriter, err error) {
	var re *requestError
	if !errors.As(err, &re) {
		re = fail(http.StatusInternalServerError, codeInternal, "internal server error")
	}
	writeErrors(w, re.status, re.errs...)
}

// engineResponse is the engine's output; data is kept verbatim.
type engineResponse struct {
	Errors     []gqlError      `json:"errors,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Extensions json.RawMessage `json:"extensions,omitempty"`
}

// The engine reports a subgraph it could not reach (or that answered with
// something other than GraphQL) as this message, without a code.
var fetchFailed = regexp.MustCompile(`^Failed to fetch from Subgraph '([^']*)'`)

// finishResponse gives the engine's fetch failures codes and client-worthy
// messages, and picks the status: 200 for any GraphQL result, 504 when the
// deadline passed before any data was produced.
func (rt *Router) finishResponse(raw []byte, timedOut bool) (int, []byte) {
	if !bytes.Contains(raw, []byte(`"errors"`)) {
		return http.StatusOK, raw // fast path: nothing to rewrite
	}
	var resp engineResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		rt.log.Error("engine produced invalid JSON", "err", err)
		return http.StatusInternalServerError, mustMarshal(engineResponse{Errors: []gqlError{newError(codeInternal, "internal server error")}})
	}
	for i := range resp.Errors {
		e := &resp.Errors[i]
		e.Path = dropEmptySegments(e.Path)
		m := fetchFailed.FindStringSubmatch(e.Message)
		if m == nil {
			continue
		}
		subgraph := m[1]
		if timedOut {
			*e = newError(codeGatewayTimeout, "subgraph '%s' did not answer within %s", subgraph, rt.opts.RequestTimeout)
		} else {
			*e = newError(codeSubgraphUnavailable, "subgraph '%s' is unavailable", subgraph)
		}
		e.Extensions["serviceName"] = subgraph
	}
	status := http.StatusOK
	if timedOut && !producedData(resp.Data) {
		status = http.StatusGatewayTimeout
	}
	return status, mustMarshal(resp)
}

// dropEmptySegments removes the "" that the engine writes in place of the
// list index when it rewrites an _entities error path to the client's path
// (["product", "", "stock"]). No field is named "", so nothing else is lost.
func dropEmptySegments(path json.RawMessage) json.RawMessage {
	if !bytes.Contains(path, []byte(`""`)) {
		return path
	}
	var segs []any
	if json.Unmarshal(path, &segs) != nil {
		return path
	}
	kept := segs[:0]
	for _, s := range segs {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return mustMarshal(kept)
}

// producedData reports whether data holds at least one non-null root field.
func producedData(data json.RawMessage) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return false
	}
	for _, v := range fields {
		if !bytes.Equal(v, []byte("null")) {
			return true
		}
	}
	return false
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are marshalled here
	}
	return b
}

func writeErrors(w http.ResponseWriter, status int, errs ...gqlError) {
	writeJSON(w, status, mustMarshal(engineResponse{Errors: errs}))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
