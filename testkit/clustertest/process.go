package clustertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one `mart serve --targets <Target>` process of the cluster.
// It can be killed, stopped and started again on the same address; its
// output is appended to one log file across restarts.
type Process struct {
	Name   string // e.g. "order-1"
	Target string // e.g. "order" or "router"
	Addr   string // host:port it listens on
	URL    string // its own /graphql, bypassing the balancer

	c      *Cluster
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run ended
	starts int
}

// LogPath is the file holding the process's output.
func (p *Process) LogPath() string { return filepath.Join(p.c.Artifacts, p.Name+".log") }

// BaseURL is http://host:port of the process.
func (p *Process) BaseURL() string { return "http://" + p.Addr }

// Start runs the process; it fails when it is already running. It does
// not wait for readiness: see WaitReady.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return fmt.Errorf("%s: already running", p.Name)
	}
	log, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", p.Name, err)
	}
	p.starts++
	// The clustertest lines in the log are notes for whoever reads it
	// after a failure: one that cannot be written does not stop the
	// process, and its own output goes through its own descriptor.
	_, _ = fmt.Fprintf(log, "=== clustertest: start #%d of %s at %s\n", p.starts, p.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.c.bin, "serve", "--targets", p.Target)
	cmd.Env = append(os.Environ(), p.c.baseEnv...)
	if p.Target == RouterGroup {
		cmd.Env = append(cmd.Env, "MART_ROUTER_ADDR="+p.Addr)
	} else {
		cmd.Env = append(cmd.Env, "MART_"+strings.ToUpper(p.Target)+"_ADDR="+p.Addr)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // signals reach its children too
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		_, _ = fmt.Fprintf(log, "=== clustertest: %s exited at %s: %v\n", p.Name, time.Now().UTC().Format(time.RFC3339Nano), err)
		_ = log.Close()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	return nil
}

// Running reports whether the process runs now.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *Process) runningLocked() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id of the current run, 0 when not running.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill sends SIGKILL to the process group and waits until it is gone: a
// crash, with nothing flushed, committed or closed by the process itself.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM and waits for a graceful shutdown; after 20s it
// kills the process and reports an error.
func (p *Process) Stop() error {
	if err := p.signal(syscall.SIGTERM, 20*time.Second); err != nil {
		_ = p.Kill()
		return err
	}
	return nil
}

func (p *Process) signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	if !p.runningLocked() {
		p.mu.Unlock()
		return nil
	}
	pid, exited := p.cmd.Process.Pid, p.exited
	p.mu.Unlock()
	if err := syscall.Kill(-pid, sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%s: still running %s after %v", p.Name, wait, sig)
	}
}

// Restart stops the process if it runs (gracefully), starts it again on
// the same address and waits until it is ready.
func (p *Process) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	return p.WaitReady(ctx)
}

// Ready reports whether GET /readyz answers 200 now.
func (p *Process) Ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, err := get(ctx, p.BaseURL()+"/readyz")
	return err == nil && status == http.StatusOK
}

// WaitReady polls /readyz until it answers 200; it fails when the process
// exits or ctx ends first.
func (p *Process) WaitReady(ctx context.Context) error {
	for {
		p.mu.Lock()
		exited := p.exited
		p.mu.Unlock()
		if exited == nil {
			return fmt.Errorf("%s: not started", p.Name)
		}
		select {
		case <-exited:
			return fmt.Errorf("%s: exited while starting", p.Name)
		default:
		}
		if p.Ready(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready: %w", p.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Sample is one Prometheus sample.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics scrapes the process's /metrics.
func (p *Process) Metrics(ctx context.Context) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", p.Name, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// Metric returns the sum of the samples named name whose labels include
// labels (nil: any), and whether any such sample exists. A gauge a process
// never set is absent: callers usually read that as 0.
func (p *Process) Metric(ctx context.Context, name string, labels map[string]string) (float64, bool, error) {
	samples, err := p.Metrics(ctx)
	if err != nil {
		return 0, false, err
	}
	var sum float64
	found := false
	for _, s := range samples {
		if s.Name != name || !matches(s.Labels, labels) {
			continue
		}
		sum += s.Value
		found = true
	}
	return sum, found, nil
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// ParseMetrics reads the Prometheus text exposition format: comments are
// skipped, timestamps ignored.
func ParseMetrics(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseSample reads one sample line: name, labels if any, value.
func parseSample(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return Sample{}, fmt.Errorf("metrics: bad line %q", line)
	}
	s.Name = line[:i]
	rest := line[i:]
	if strings.HasPrefix(rest, "{") {
		var err error
		if rest, err = parseLabels(rest[1:], s.Labels); err != nil {
			return Sample{}, fmt.Errorf("metrics: %w in %q", err, line)
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return Sample{}, fmt.Errorf("metrics: no value in %q", line)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return Sample{}, fmt.Errorf("metrics: value in %q: %w", line, err)
	}
	s.Value = v
	return s, nil
}

// parseLabels reads the labels after a sample's '{' into labels and
// returns what follows the closing '}'.
func parseLabels(rest string, labels map[string]string) (string, error) {
	for {
		rest = strings.TrimLeft(rest, ", ")
		if strings.HasPrefix(rest, "}") {
			return rest[1:], nil
		}
		eq := strings.Index(rest, `="`)
		if eq < 0 {
			return "", errors.New("bad labels")
		}
		key := rest[:eq]
		val, n, ok := unquoteLabelValue(rest[eq+2:])
		if !ok {
			return "", errors.New("unterminated label")
		}
		labels[key] = val
		rest = rest[eq+2+n:]
	}
}

// unquoteLabelValue reads a label value up to its closing quote, escapes
// undone, and returns it with how many bytes of rest it took, the quote
// included; ok is false when the quote never comes.
func unquoteLabelValue(rest string) (val string, n int, ok bool) {
	var b strings.Builder
	i := 0
	for ; i < len(rest) && rest[i] != '"'; i++ {
		if rest[i] == '\\' && i+1 < len(rest) {
			i++
			switch rest[i] {
			case 'n':
				b.WriteByte('\n')
			default:
				b.WriteByte(rest[i])
			}
			continue
		}
		b.WriteByte(rest[i])
	}
	if i >= len(rest) {
		return "", 0, false
	}
	return b.String(), i + 1, true
}
