package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/dop251/goja"
	nodev1 "github.com/wundergraph/cosmo/router/gen/proto/wg/cosmo/node/v1"
	"github.com/wundergraph/graphql-go-tools/execution/engine"
)

// CompositionError is returned when the subgraph schemas do not compose.
// Each entry of Problems is one message of the composer, which names the
// subgraphs, types and fields involved when it knows them.
type CompositionError struct {
	Problems []string
}

func (e *CompositionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "supergraph composition failed with %d error(s):", len(e.Problems))
	for i, p := range e.Problems {
		// Indent continuation lines so multi-line messages stay readable in a list.
		fmt.Fprintf(&b, "\n  %d. %s", i+1, strings.ReplaceAll(p, "\n", "\n     "))
	}
	return b.String()
}

// Compose composes the subgraph schema files into a supergraph and returns
// the client-facing (API) schema: what clients may query, without the
// federation machinery. The output depends only on the inputs, so it can be
// committed and diffed (schema/supergraph.graphql).
func Compose(ctx context.Context, subgraphs []Subgraph) (string, error) {
	rc, err := composeRouterConfig(ctx, subgraphs)
	if err != nil {
		return "", err
	}
	sdl := rc.GetEngineConfig().GetGraphqlClientSchema()
	if sdl == "" {
		sdl = rc.GetEngineConfig().GetGraphqlSchema()
	}
	return stripComposerDefinitions(sdl), nil
}

// The composer declares its own directives (and their scalar) in every
// client schema. Unused, they are noise in our API schema, so their
// one-line definitions are dropped unless something applies them.
var composerDefinitions = []struct{ line, use string }{
	{"directive @authenticated ", "@authenticated"},
	{"directive @requiresScopes(", "@requiresScopes"},
	{"directive @inaccessible ", "@inaccessible"},
	{"directive @tag(", "@tag"},
	{"scalar openfed__Scope", "openfed__Scope"},
}

func stripComposerDefinitions(sdl string) string {
	lines := strings.Split(sdl, "\n")
	for _, d := range composerDefinitions {
		var kept []string
		uses := 0
		for _, l := range lines {
			if !strings.HasPrefix(l, d.line) {
				uses += strings.Count(l, d.use)
			}
		}
		for _, l := range lines {
			if uses == 0 && strings.HasPrefix(l, d.line) {
				continue
			}
			kept = append(kept, l)
		}
		lines = kept
	}
	// Collapse the blank lines left behind.
	var out []string
	for _, l := range lines {
		if l == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n")) + "\n"
}

// composeRouterConfig reads the schema files and runs the engine's
// federation composition (Cosmo's composition in an embedded JS VM).
func composeRouterConfig(ctx context.Context, subgraphs []Subgraph) (*nodev1.RouterConfig, error) {
	if len(subgraphs) == 0 {
		return nil, errors.New("compose: no subgraphs")
	}
	configs := make([]engine.SubgraphConfiguration, 0, len(subgraphs))
	for _, s := range subgraphs {
		sdl, err := os.ReadFile(s.SchemaFile)
		if err != nil {
			return nil, fmt.Errorf("compose: schema of subgraph %q: %w", s.Name, err)
		}
		configs = append(configs, engine.SubgraphConfiguration{
			Name: s.Name,
			URL:  s.RoutingURL,
			SDL:  string(sdl),
		})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := engine.NewFederationEngineConfigFactory(ctx, configs).Compose()
	if err != nil {
		return nil, compositionError(err)
	}
	return rc, nil
}

// The composer throws one JS Error whose message joins every composition
// error with ", ". Messages themselves contain commas, but each starts on a
// capital letter or a quote after the separator, which is what we split on.
var (
	composerPrefix = regexp.MustCompile(`^(?:Error: )?could not federate schema: `)
	composerSplit  = regexp.MustCompile(`,\s+([A-Z"])`)
)

func compositionError(err error) error {
	msg := err.Error()
	var ex *goja.Exception
	if errors.As(err, &ex) && ex.Value() != nil {
		msg = ex.Value().String() // the thrown message without the JS stack
	}
	if !composerPrefix.MatchString(msg) {
		return &CompositionError{Problems: []string{strings.TrimSpace(msg)}}
	}
	msg = composerPrefix.ReplaceAllString(msg, "")
	msg = composerSplit.ReplaceAllString(msg, "\x00$1")
	// The composer may report one problem more than once; say it once.
	var problems []string
	seen := map[string]bool{}
	for _, p := range strings.Split(msg, "\x00") {
		if p = strings.TrimSpace(p); p != "" && !seen[p] {
			seen[p] = true
			problems = append(problems, p)
		}
	}
	return &CompositionError{Problems: problems}
}
