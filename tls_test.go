package millrace_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace"
	"github.com/millrace/millrace/internal/redistest"
)

// tlsURLClient connects to url (rediss://) the way an application does:
// redis.ParseURL, then the CA that signed the server's certificate.
func tlsURLClient(t *testing.T, url string, roots *x509.CertPool) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	require.NoError(t, err)
	require.NotNil(t, o.TLSConfig, "rediss:// turns TLS on")
	o.TLSConfig.RootCAs = roots
	o.MaxRetries = -1
	o.DialTimeout = 2 * time.Second
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// The test server's CA, read from the file the server was configured with,
// as an application reads its CA bundle.
func tlsServerCA(t *testing.T, srv *redistest.Server) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(srv.Dir(), "ca.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	return pool
}

// tlsOtherCA is a CA that signed nothing the server has.
func tlsOtherCA(t *testing.T) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "some other CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// Publish and consume over TLS with a rediss:// URL and the server's CA.
func TestTLS_RedissURL(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{TLS: true, NoAOF: true})
	require.True(t, strings.HasPrefix(srv.URL(), "rediss://"), srv.URL())
	c := tlsURLClient(t, srv.URL(), tlsServerCA(t, srv))

	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err)
	defer pub.Close()
	sub, err := millrace.NewSubscriber(c, groupConfig("workers"), nil)
	require.NoError(t, err)
	defer sub.Close()
	topic := newTopic()
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	sent := publish(t, pub, topic, "over TLS", "again")
	for _, want := range sent {
		msg := receive(t, ch)
		assert.Equal(t, want.UUID, msg.UUID)
		assert.Equal(t, want.Payload, msg.Payload)
		msg.Ack()
	}
	require.Eventually(t, func() bool { return pendingCount(t, c, topic, "workers") == 0 }, 5*time.Second, 10*time.Millisecond)
}

// A client that trusts another CA is refused by both Publish and Subscribe
// with the x509 error, at once: nothing is sent in clear, and nothing is
// retried for long.
func TestTLS_WrongCA(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, redistest.Options{TLS: true, NoAOF: true})
	c := tlsURLClient(t, srv.URL(), tlsOtherCA(t))

	pub, err := millrace.NewPublisher(c, millrace.PublisherConfig{}, nil)
	require.NoError(t, err, "NewPublisher does not connect")
	start := time.Now()
	err = pub.Publish("orders", message.NewMessage(watermill.NewUUID(), []byte("x")))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.Contains(t, err.Error(), "x509")
	var unknown x509.UnknownAuthorityError
	assert.ErrorAs(t, err, &unknown, "the x509 error is wrapped, not flattened: %v", err)
	t.Logf("Publish: %v (after %s)", err, time.Since(start).Round(time.Millisecond))
	require.NoError(t, pub.Close())

	for _, group := range []string{"workers", ""} {
		sub, err := millrace.NewSubscriber(c, millrace.SubscriberConfig{ConsumerGroup: group}, nil)
		require.NoError(t, err)
		start = time.Now()
		_, err = sub.Subscribe(context.Background(), "orders")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate", "group %q", group)
		assert.ErrorAs(t, err, &unknown, "group %q: %v", group, err)
		t.Logf("Subscribe (group %q): %v (after %s)", group, err, time.Since(start).Round(time.Millisecond))
		require.NoError(t, sub.Close())
	}
}
