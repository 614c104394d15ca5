package gqlserver

import "github.com/onlinemart/mart/internal/envvar"

// Limits bound what one request may ask of a subgraph.
type Limits struct {
	// MaxBodyBytes bounds a request body: a larger one is refused with 413
	// PAYLOAD_TOO_LARGE. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxTokens bounds the lexical tokens of a document (GRAPHQL_PARSE_FAILED
	// past it), and so the fields of one once its fragments are expanded
	// (QUERY_LIMIT_EXCEEDED). Zero means DefaultMaxTokens.
	MaxTokens int
}

// Vars declares the limits every subgraph of a process applies.
func (l *Limits) Vars() []envvar.Var {
	return []envvar.Var{
		envvar.Bytes(&l.MaxBodyBytes, "MART_SUBGRAPH_MAX_BODY_BYTES", "8388608", "subgraphs: largest accepted request body (the router's entity fetches can outgrow a client's body)"),
		envvar.Int(&l.MaxTokens, "MART_SUBGRAPH_MAX_TOKENS", "15000", "subgraphs: most lexical tokens in one GraphQL document"),
	}
}
