package router

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// proxies are the trusted proxies (Kong) in front of the router: for a
// request that comes through one, X-Forwarded-For names the client.
type proxies []netip.Prefix

// parseProxies reads addresses ("10.0.0.7") and CIDRs ("10.0.0.0/8").
func parseProxies(list []string) (proxies, error) {
	var out proxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (p proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, prefix := range p {
		if prefix.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the address of the client behind r. The peer is the
// client unless it is a trusted proxy; then X-Forwarded-For is read from
// the right (each proxy appends the address it saw), skipping trusted
// proxies: the first other address is the client. Entries left of it were
// written by the client itself and prove nothing.
func (p proxies) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !p.trusts(peer) {
		return host
	}
	client := peer.Unmap().String()
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed entry: the last good one is the client
		}
		client = hop.Unmap().String()
		if !p.trusts(hop) {
			break
		}
	}
	return client
}
