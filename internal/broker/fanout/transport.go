package fanout

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/coder/websocket"
)

// webSocketSubprotocol is the WebSocket subprotocol of AMQP 1.0 that
// Service Bus answers at wss://{namespace}/$servicebus/websocket.
const webSocketSubprotocol = "AMQPWSB10"

// WebSockets returns ClientOptions that reach each namespace with AMQP
// over WebSockets, wss://{host}/$servicebus/websocket on port 443, through
// rt: the way Service Bus SDKs cross HTTP proxies
// (https://learn.microsoft.com/python/api/azure-servicebus/azure.servicebus.transporttype,
// and azservicebus's example_websockets_and_proxies_test.go). With a
// transport that dials a local tenantbridge for Azure's names (and trusts
// its CA), or http.DefaultTransport under HTTPS_PROXY, the clients reach
// tenantbridge's HTTPS listener or proxy with nothing else configured.
func WebSockets(rt http.RoundTripper) ClientOptionsFunc {
	// The upgrade is an HTTP/1.1 request: net/http keeps it off HTTP/2
	// connections by itself. No client timeout: the connection lives on.
	hc := &http.Client{Transport: rt}
	dial := func(ctx context.Context, args azservicebus.NewWebSocketConnArgs) (net.Conn, error) {
		c, _, err := websocket.Dial(ctx, args.Host, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{webSocketSubprotocol}})
		if err != nil {
			return nil, err
		}
		// ctx is the dial's: the connection must outlive it.
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary), nil
	}
	return func(string) *azservicebus.ClientOptions {
		return &azservicebus.ClientOptions{NewWebSocketConn: dial}
	}
}

// AMQPS returns ClientOptions that reach every namespace's AMQPS at addr
// (host:port, e.g. tenantbridge's serve --amqp-listen 127.0.0.1:5671) as
// ClientOptions.CustomEndpoint, trusting roots and verifying the
// namespace's own name, as a program on the host reaches a local Service
// Bus.
func AMQPS(addr string, roots *x509.CertPool) ClientOptionsFunc {
	return func(host string) *azservicebus.ClientOptions {
		return &azservicebus.ClientOptions{CustomEndpoint: addr,
			TLSConfig: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}}
	}
}
