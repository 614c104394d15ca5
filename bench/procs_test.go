package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onlinemart/mart/testkit/clustertest"
	"github.com/onlinemart/mart/testkit/systemtest"
)

// A process is a program the benchmark runs beside itself, so that its
// memory can be read on its own (a gateway in the benchmark's process
// would share its heap with the load generator).
type process struct {
	Name string
	URL  string // its GraphQL endpoint
	cmd  *exec.Cmd
}

// PeakRSS is the most resident memory the process has used, in bytes
// (VmHWM: Linux keeps the high-water mark for us).
func (p *process) PeakRSS() int64 { return procStatus(p.cmd.Process.Pid, "VmHWM") }

// RSS is the resident memory now, in bytes.
func (p *process) RSS() int64 { return procStatus(p.cmd.Process.Pid, "VmRSS") }

func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }() // read only: a failed close loses nothing
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startProcess runs cmd until the benchmark ends and waits until
// readyURL answers 200. The process's output goes to the benchmark's
// stderr, so a gateway that fails to start says why.
func startProcess(b *testing.B, name, url, readyURL string, cmd *exec.Cmd) *process {
	b.Helper()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop its children too
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	exited := make(chan struct{})
	// Its exit status says only that the cleanup below stopped it, or
	// that it failed to start, which the wait for readiness reports.
	go func() { _ = cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		// The group may be gone already: ESRCH is the only failure.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-exited:
			b.Fatalf("%s exited during start", name)
		default:
		}
		if resp, err := http.Get(readyURL); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return &process{Name: name, URL: url, cmd: cmd}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not ready at %s after 2 minutes", name, readyURL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startRouter runs our router as its own process (`mart serve --targets
// router`, as in production) in front of the services of sys, and points
// sys's clients (Login, Admin, Customer) at it when sys has no router.
func startRouter(b *testing.B, sys *systemtest.System, extraEnv ...string) *process {
	b.Helper()
	addr := clustertest.FreeAddr(b)
	cmd := exec.CommandContext(context.Background(), clustertest.Binary(b), "serve", "--targets", "router")
	cmd.Env = append(os.Environ(),
		"MART_ROUTER_ADDR="+addr,
		"MART_SUPERGRAPH_CONFIG="+filepath.Join(systemtest.RepoRoot(), "supergraph.yaml"),
		"MART_LOG_LEVEL=warn",
	)
	for name, url := range sys.Services {
		cmd.Env = append(cmd.Env, "MART_"+strings.ToUpper(name)+"_ROUTING_URL="+url)
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	p := startProcess(b, "mart router", "http://"+addr+"/graphql", "http://"+addr+"/readyz", cmd)
	if sys.RouterURL == "" {
		sys.RouterURL = p.URL
	}
	return p
}
