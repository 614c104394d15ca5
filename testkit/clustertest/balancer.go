package clustertest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Balancer is the haproxy in front of every group: one frontend per group,
// round robin over the group's replicas, each replica health-checked on
// GET /readyz every 500ms (down after 2 failures, up after 1 success), as
// a Kubernetes Service with a readiness probe would route. A connection
// refused by a dead replica is retried on another (retries, redispatch),
// which is haproxy's usual setup; a request already sent is not.
type Balancer struct {
	cmd       *exec.Cmd
	exited    chan struct{}
	statsAddr string
}

func startBalancer(bin, dir string, groups map[string]*Group) (*Balancer, error) {
	stats, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 4096

defaults
    mode http
    option http-server-close
    timeout connect 2s
    timeout client 2m
    timeout server 2m
    timeout tunnel 1h
    timeout http-keep-alive 5s
    timeout queue 10s
    # a /readyz slower than the check interval on a busy machine is not a
    # dead replica
    timeout check 2s
    retries 2
    option redispatch 1

listen stats
    bind %s
    stats enable
    stats uri /stats
    stats refresh 1s
`, stats)
	names := make([]string, 0, len(groups))
	for name := range groups {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		g := groups[name]
		fmt.Fprintf(&b, `
frontend fe_%[1]s
    bind %[2]s
    default_backend be_%[1]s

backend be_%[1]s
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1
`, name, g.LB)
		for _, p := range g.Procs {
			fmt.Fprintf(&b, "    server %s %s check\n", p.Name, p.Addr)
		}
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("haproxy config %s: %w\n%s", cfg, err, out)
	}
	log, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = log.Close() // empty: nothing ran to write to it
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	lb := &Balancer{cmd: cmd, exited: make(chan struct{}), statsAddr: stats}
	go func() {
		// The exit status says only that stop killed it, or that it died
		// at start, which the wait below reports with its log. haproxy
		// wrote the log through its own descriptor: closing ours loses
		// nothing.
		_ = cmd.Wait()
		_ = log.Close()
		close(lb.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := lb.stats(); err == nil {
			return lb, nil
		}
		select {
		case <-lb.exited:
			return nil, fmt.Errorf("haproxy exited at start; see %s", filepath.Join(dir, "haproxy.log"))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			lb.stop()
			return nil, fmt.Errorf("haproxy stats not answering at %s", stats)
		}
	}
}

// stats returns haproxy's CSV statistics, one map per proxy or server.
func (lb *Balancer) stats() ([]map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+lb.statsAddr+"/stats;csv", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("haproxy stats: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("haproxy stats: empty")
	}
	header := rows[0]
	header[0] = strings.TrimPrefix(header[0], "# ")
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range header {
			if i < len(r) {
				m[h] = r[i]
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// serversUp counts the servers of a group's backend that are UP.
func (lb *Balancer) serversUp(group string) (int, error) {
	rows, err := lb.stats()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		if r["pxname"] == "be_"+group && r["svname"] != "BACKEND" && strings.HasPrefix(r["status"], "UP") {
			n++
		}
	}
	return n, nil
}

func (lb *Balancer) stop() {
	_ = syscall.Kill(-lb.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-lb.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-lb.cmd.Process.Pid, syscall.SIGKILL)
		<-lb.exited
	}
}
