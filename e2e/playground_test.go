package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/onlinemart/mart/testkit/systemtest"
)

// chromiumPath finds the browser of the playground test: $MART_CHROMIUM,
// else chromium (Debian's package) or Chrome on the PATH. Without one the
// test is skipped, saying how to install it, unless MART_REQUIRE_CHROMIUM
// is set (.ci/run sets it): then it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MART_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const missing = "the playground test needs headless Chromium, and none was found: install it with " +
		"`apt-get install chromium` (Debian/Ubuntu; .ci/run does this) or set MART_CHROMIUM to a Chrome or Chromium binary"
	if os.Getenv("MART_REQUIRE_CHROMIUM") != "" {
		t.Fatal(missing)
	}
	t.Skip("SKIPPED: " + missing)
	return ""
}

// artifactDir is where browser tests leave screenshots: $MART_ARTIFACTS,
// else mart-artifacts in the system's temporary directory (kept after the
// test, outside the repository).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MART_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mart-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browserLog collects what went wrong in the page: failed or 4xx/5xx
// requests, requests to any other host, script exceptions, CSP violations;
// and the websocket frames the page sent.
type browserLog struct {
	origin string

	mu        sync.Mutex
	requests  map[network.RequestID]string
	urls      []string
	problems  []string
	wsFrames  []string
	consoleJS []string
}

func (b *browserLog) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests[ev.RequestID] = ev.Request.URL
		b.urls = append(b.urls, ev.Request.URL)
		if u, err := url.Parse(ev.Request.URL); err != nil || (u.Scheme != "data" && u.Host != b.origin) {
			b.problems = append(b.problems, "request to another host: "+ev.Request.URL)
		}
	case *network.EventWebSocketCreated:
		b.urls = append(b.urls, ev.URL)
		if u, err := url.Parse(ev.URL); err != nil || u.Host != b.origin {
			b.problems = append(b.problems, "websocket to another host: "+ev.URL)
		}
	case *network.EventResponseReceived:
		if ev.Response.Status >= 400 {
			b.problems = append(b.problems, fmt.Sprintf("%d %s", ev.Response.Status, ev.Response.URL))
		}
	case *network.EventLoadingFailed:
		b.problems = append(b.problems, fmt.Sprintf("load failed (%s, canceled %v, blocked %q): %s", ev.ErrorText, ev.Canceled, ev.BlockedReason, b.requests[ev.RequestID]))
	case *network.EventWebSocketFrameSent:
		b.wsFrames = append(b.wsFrames, string(ev.Response.PayloadData))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("script exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *cdplog.EventEntryAdded:
		if e := ev.Entry; e.Level == cdplog.EntryLevelError {
			b.consoleJS = append(b.consoleJS, fmt.Sprintf("[%s] %s %s", e.Source, e.Text, e.URL))
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			b.consoleJS = append(b.consoleJS, strings.Join(parts, " "))
		}
	}
}

func (b *browserLog) snapshot() (urls, problems, frames, console []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slicesClone(b.urls), slicesClone(b.problems), slicesClone(b.wsFrames), slicesClone(b.consoleJS)
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// TestPlaygroundInChromium opens the router's GraphiQL playground in
// headless Chromium against the whole system started in-process (as `make
// run` does): the page and Monaco's workers load from the router alone with
// no failed request, a query typed into the editor returns data with the
// token from the headers editor, and a subscription started in the
// playground shows a product renamed through an HTTP mutation. The
// screenshot is written to $MART_ARTIFACTS (or $TMPDIR/mart-artifacts) as
// playground.png.
func TestPlaygroundInChromium(t *testing.T) {
	chromium := chromiumPath(t)
	sys := systemtest.Start(t)
	admin := sys.Admin(t)
	p := create(t, sys, map[string]any{"sku": "PLAY-1", "name": "Playground teapot", "price": map[string]any{"amount": 1500, "currency": "EUR"}}).Product

	base, err := url.Parse(sys.RouterURL)
	if err != nil {
		t.Fatal(err)
	}
	home := base.Scheme + "://" + base.Host + "/"

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	log := &browserLog{origin: base.Host, requests: map[network.RequestID]string{}}
	if err := chromedp.Listen(bctx, log.listen); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}

	// CSP violations in the page are reported to its script (and to the
	// log domain): collect them there.
	const watchCSP = `window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));`
	err = chromedp.Do(bctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchCSP})
			return err
		}),
		chromedp.Navigate(home),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[chromedp.Void](`window.martPlayground && window.martPlayground.ready`, chromedp.WithPollingTimeout(30*time.Second))(ctx, tg)
			return err
		}),
	)
	if err != nil {
		t.Fatalf("loading the playground in %s: %v", chromium, err)
	}
	pg := &playground{t: t, ctx: bctx, log: log}
	headers := jsString(fmt.Sprintf(`{"Authorization": "Bearer %s"}`, admin.Token))

	// A query, with the admin's token from the headers editor.
	pg.run(`window.martPlayground.setHeaders(` + headers + `)`)
	pg.operation("Catalog", `query Catalog { me { email role } products(first: 5) { edges { node { id name } } } }`, ``)
	text := pg.response(`"Playground teapot"`, 20*time.Second)
	if !strings.Contains(text, systemtest.AdminEmail) || !strings.Contains(text, `"ADMIN"`) {
		pg.fail("the query ran without the admin's token from the headers editor:\n%s", text)
	}

	// A subscription: the playground follows the product while the admin
	// renames it over HTTP.
	pg.operation("Follow", `subscription Follow($id: ID!) { productChanged(id: $id) { id name } }`, fmt.Sprintf(`{"id": %q}`, p.ID))
	if !pg.showsRename(admin, p.ID) {
		pg.fail("no productChanged event reached the playground's result pane")
	}
	pg.screenshot("playground.png")
	pg.run(`window.martPlayground.stop()`)

	// The token typed in the headers editor went into connection_init.
	urls, problems, frames, console := log.snapshot()
	if !initCarries(frames, "Bearer "+admin.Token) {
		t.Errorf("no connection_init carried the Authorization header; frames sent: %q", frames)
	}

	// Everything came from the router, nothing failed, Monaco's workers
	// loaded (no fallback to the main thread), and the CSP blocked nothing.
	for _, w := range []string{"editor.worker-", "graphql.worker-", "json.worker-"} {
		if !slices.ContainsFunc(urls, func(u string) bool { return strings.Contains(u, "/playground/"+w) }) {
			t.Errorf("Monaco worker %s was not loaded; requests: %q", w, urls)
		}
	}
	if len(problems) > 0 {
		t.Errorf("the page had problems:\n%s", strings.Join(problems, "\n"))
	}
	violations, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.cspViolations`))
	if err != nil || len(violations) > 0 {
		t.Errorf("Content-Security-Policy violations: %q (%v)", violations, err)
	}
	if len(console) > 0 {
		t.Logf("console errors (not failures): %q", console)
	}
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// playground drives the playground page open in the browser of ctx.
type playground struct {
	t   *testing.T
	ctx context.Context // the browser's
	log *browserLog
}

// screenshot writes the page as name into the artifacts directory.
func (pg *playground) screenshot(name string) {
	png, err := chromedp.Run(pg.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		pg.t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(artifactDir(pg.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		pg.t.Errorf("screenshot: %v", err)
		return
	}
	pg.t.Logf("screenshot: %s", path)
}

// fail ends the test with a screenshot and what the page logged.
func (pg *playground) fail(format string, args ...any) {
	pg.t.Helper()
	pg.screenshot("playground-failed.png")
	_, problems, _, console := pg.log.snapshot()
	pg.t.Fatalf(format+"\nproblems: %q\nconsole errors: %q", append(args, problems, console)...)
}

// run evaluates expr in the page.
func (pg *playground) run(expr string) {
	pg.t.Helper()
	if _, err := chromedp.Run(pg.ctx, chromedp.Evaluate[any](expr+`; null`)); err != nil {
		pg.fail("%s: %v", expr, err)
	}
}

// responseText is what the result pane shows.
func (pg *playground) responseText() string {
	pg.t.Helper()
	text, err := chromedp.Run(pg.ctx, chromedp.Evaluate[string](`window.martPlayground.response()`))
	if err != nil {
		pg.fail("reading the result pane: %v", err)
	}
	return text
}

// operation puts an operation into the editor, with its variables, and
// runs it once GraphiQL has parsed it.
func (pg *playground) operation(name, query, variables string) {
	pg.t.Helper()
	pg.run(`window.martPlayground.setQuery(` + jsString(query) + `); window.martPlayground.setVariables(` + jsString(variables) + `)`)
	if _, err := chromedp.Run(pg.ctx, chromedp.Poll[chromedp.Void](`window.martPlayground.operationName === `+jsString(name), chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		pg.fail("GraphiQL did not take operation %s: %v", name, err)
	}
	pg.run(`window.martPlayground.run()`)
}

// response waits until the result pane contains want.
func (pg *playground) response(want string, within time.Duration) string {
	pg.t.Helper()
	var text string
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if text = pg.responseText(); strings.Contains(text, want) {
			return text
		}
	}
	pg.fail("the result pane does not show %q after %s; it shows:\n%s", want, within, text)
	return ""
}

// showsRename renames product id as admin over HTTP until the result pane
// shows the new name, up to 15 times. The subscription is live once the
// product service has it; retrying the rename beats guessing a delay.
func (pg *playground) showsRename(admin systemtest.Client, id string) bool {
	pg.t.Helper()
	for i := 1; i <= 15; i++ {
		name := fmt.Sprintf("Renamed in the playground %d", i)
		admin.MustQuery(pg.t, `mutation($id: ID!, $name: String!) { updateProduct(input: {id: $id, name: $name}) { product { id } } }`,
			map[string]any{"id": id, "name": name}, nil)
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if strings.Contains(pg.responseText(), name) {
				return true
			}
		}
	}
	return false
}

// initCarries says whether a connection_init among the websocket frames
// sent carried authorization as its Authorization.
func initCarries(frames []string, authorization string) bool {
	for _, f := range frames {
		var m struct {
			Type    string
			Payload map[string]any
		}
		if json.Unmarshal([]byte(f), &m) == nil && m.Type == "connection_init" && m.Payload["Authorization"] == authorization {
			return true
		}
	}
	return false
}
