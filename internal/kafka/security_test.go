package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/onlinemart/mart/internal/kafka"
)

// A broker that demands SASL accepts the configured user with each
// mechanism, and refuses a wrong password.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.EnableSASL(), kfake.Superuser(mech, "mart", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sec := kafka.Security{SASLMechanism: mech, SASLUsername: "mart", SASLPassword: "s3cret"}
			if err := produce(t, c.ListenAddrs(), sec); err != nil {
				t.Errorf("right password: %v", err)
			}
			sec.SASLPassword = "guess"
			if err := produce(t, c.ListenAddrs(), sec); err == nil {
				t.Error("wrong password: the record was accepted")
			}
		})
	}
}

// Over TLS the client verifies the broker against the CA file: it
// connects with it and refuses the broker without it.
func TestTLSWithCAFile(t *testing.T) {
	caFile, serverCert := newCA(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := produce(t, c.ListenAddrs(), kafka.Security{TLS: true, CAFile: caFile}); err != nil {
		t.Errorf("with the CA file: %v", err)
	}
	if err := produce(t, c.ListenAddrs(), kafka.Security{TLS: true}); err == nil {
		t.Error("without the CA file: a broker signed by an unknown CA was trusted")
	}
}

func TestSecureRejectsBadSettings(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sec  kafka.Security
		want string
	}{
		{kafka.Security{SASLMechanism: "GSSAPI", SASLUsername: "u"}, "GSSAPI"},
		{kafka.Security{TLS: true, CAFile: "/nonexistent/ca.pem"}, "CA file"},
		{kafka.Security{TLS: true, CAFile: notPEM}, "no PEM certificate"},
	} {
		if _, err := kafka.Secure([]string{"127.0.0.1:9092"}, c.sec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Secure(%+v) = %v, want an error about %q", c.sec, err, c.want)
		}
	}
}

const topic = "secure.events.v1"

// produce sends one record to brokers reached with sec.
func produce(t *testing.T, brokers []string, sec kafka.Security) error {
	t.Helper()
	cluster, err := kafka.Secure(brokers, sec)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.NewClient(kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Refusals surface as retries until the deadline: keep it short.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("hello")}).FirstErr()
}

// newCA writes a throw-away CA's certificate to a file and returns it with
// a certificate for 127.0.0.1 that the CA signed.
func newCA(t *testing.T) (caFile string, server tls.Certificate) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := key(), key()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
}
