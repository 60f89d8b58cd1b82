package oidcfed

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/jwtparse"
)

// entry is the cached state of one issuer. Its fields are guarded by
// Verifier.mu.
type entry struct {
	keys      *keySet       // the last key set fetched; nil until a fetch succeeds
	fetchedAt time.Time     // when keys were fetched
	ttl       time.Duration // how long keys are fresh
	// lastAttempt is when the last fetch started, and lastErr its error
	// if it failed (nil once one succeeds).
	lastAttempt time.Time
	lastErr     error
	flight      *flight // the fetch under way, if any
	lastUsed    time.Time
}

// flight is one fetch of an issuer's keys, which every verification that
// needs them waits for: N concurrent verifications make one fetch.
type flight struct {
	done chan struct{} // closed when keys and err are set
	keys *keySet
	err  error
}

// remoteKey finds kid's key in issuer's JWK Set, fetching the set when it
// is missing or expired, or when kid is not in it (at most once per
// refresh interval).
func (v *Verifier) remoteKey(ctx context.Context, issuer, kid, alg string) (crypto.PublicKey, error) {
	notFound := func(err error) error {
		if errors.Is(err, errUnknownKid) {
			return &Error{Kind: ErrKeyNotFound, Issuer: issuer, KeyID: kid, Detail: "not in the issuer's JWK Set, even after a refresh"}
		}
		return &Error{Kind: ErrKeyNotFound, Issuer: issuer, KeyID: kid, Detail: err.Error()}
	}

	now := v.now()
	v.mu.Lock()
	e := v.entryLocked(issuer, now)

	if e.keys != nil && now.Before(e.fetchedAt.Add(e.ttl)) {
		// Fresh keys.
		keys := e.keys
		v.mu.Unlock()
		key, err := keys.lookup(kid, alg)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, errUnknownKid) {
			return nil, notFound(err)
		}
		// The issuer may have rotated: refresh, unless that was done
		// lately (or is being done now, in which case wait for it).
		v.mu.Lock()
		if e.keys != keys {
			// Another verification refreshed them meanwhile.
			keys = e.keys
			v.mu.Unlock()
			key, err := keys.lookup(kid, alg)
			if err != nil {
				return nil, notFound(err)
			}
			return key, nil
		}
		fl := e.flight
		if fl == nil {
			if now.Sub(e.lastAttempt) < v.refresh {
				v.mu.Unlock()
				return nil, &Error{Kind: ErrKeyNotFound, Issuer: issuer, KeyID: kid,
					Detail: "not in the issuer's JWK Set, which was fetched less than " + v.refresh.String() + " ago"}
			}
			fl = v.startFetchLocked(ctx, issuer, e, now)
		}
		v.mu.Unlock()
		keys, err = v.wait(ctx, issuer, kid, fl)
		if err != nil {
			return nil, err
		}
		key, err = keys.lookup(kid, alg)
		if err != nil {
			return nil, notFound(err)
		}
		return key, nil
	}

	// No keys, or expired ones: fetch. Until twice the TTL, expired keys
	// still serve when the fetch fails.
	var stale *keySet
	if e.keys != nil && now.Before(e.fetchedAt.Add(2*e.ttl)) {
		stale = e.keys
	}
	fl := e.flight
	if fl == nil {
		if e.lastErr != nil && now.Sub(e.lastAttempt) < v.failureBackoff() {
			// It failed moments ago; do not hammer it.
			fetchErr := e.lastErr
			v.mu.Unlock()
			return v.fromStale(stale, fetchErr, issuer, kid, alg)
		}
		fl = v.startFetchLocked(ctx, issuer, e, now)
	}
	v.mu.Unlock()
	keys, err := v.wait(ctx, issuer, kid, fl)
	if err != nil {
		return v.fromStale(stale, err, issuer, kid, alg)
	}
	key, err := keys.lookup(kid, alg)
	if err != nil {
		return nil, notFound(err)
	}
	return key, nil
}

// fromStale serves kid from stale keys after fetchErr, or fails with
// fetchErr when there are none or kid is not among them.
func (v *Verifier) fromStale(stale *keySet, fetchErr error, issuer, kid, alg string) (crypto.PublicKey, error) {
	if stale == nil {
		return nil, withKeyID(fetchErr, kid)
	}
	key, err := stale.lookup(kid, alg)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, errUnknownKid):
		return nil, withKeyID(fetchErr, kid)
	default:
		return nil, &Error{Kind: ErrKeyNotFound, Issuer: issuer, KeyID: kid, Detail: err.Error()}
	}
}

// withKeyID returns err, an *Error shared between verifications, as this
// verification's own copy naming kid.
func withKeyID(err error, kid string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.KeyID = kid
		return &c
	}
	return err
}

// failureBackoff is how long a failed fetch is remembered before the
// issuer is tried again.
func (v *Verifier) failureBackoff() time.Duration {
	return min(v.refresh, maxFailureBackoff)
}

// entryLocked returns issuer's cache entry, creating it (and forgetting
// the least recently used issuer when the cache is full).
func (v *Verifier) entryLocked(issuer string, now time.Time) *entry {
	if e, ok := v.cache[issuer]; ok {
		e.lastUsed = now
		return e
	}
	if len(v.cache) >= v.maxIssuers {
		var oldest string
		var oldestAt time.Time
		for iss, e := range v.cache {
			if oldest == "" || e.lastUsed.Before(oldestAt) {
				oldest, oldestAt = iss, e.lastUsed
			}
		}
		delete(v.cache, oldest)
	}
	e := &entry{lastUsed: now}
	v.cache[issuer] = e
	return e
}

// startFetchLocked starts fetching issuer's keys into e. The fetch runs
// on its own, not bound to ctx's cancellation, so that one caller giving
// up does not fail the others waiting for it; each request has its own
// timeout.
func (v *Verifier) startFetchLocked(ctx context.Context, issuer string, e *entry, now time.Time) *flight {
	fl := &flight{done: make(chan struct{})}
	e.flight = fl
	e.lastAttempt = now
	fctx := context.WithoutCancel(ctx)
	go func() {
		keys, ttl, err := v.fetch(fctx, issuer)
		v.mu.Lock()
		e.flight = nil
		if err == nil {
			e.keys, e.fetchedAt, e.ttl, e.lastErr = keys, v.now(), ttl, nil
		} else {
			e.lastErr = err
		}
		v.mu.Unlock()
		fl.keys, fl.err = keys, err
		close(fl.done)
	}()
	return fl
}

// wait waits for fl, or for ctx to end.
func (v *Verifier) wait(ctx context.Context, issuer, kid string, fl *flight) (*keySet, error) {
	select {
	case <-fl.done:
		if fl.err != nil {
			return nil, withKeyID(fl.err, kid)
		}
		return fl.keys, nil
	case <-ctx.Done():
		return nil, &Error{Kind: ErrIssuerUnreachable, Issuer: issuer, KeyID: kid, Detail: "gave up waiting for the issuer's keys", Err: ctx.Err()}
	}
}

// fetch reads issuer's discovery document and then its JWK Set, and
// returns the keys with the time they may be cached for.
func (v *Verifier) fetch(ctx context.Context, issuer string) (*keySet, time.Duration, error) {
	fail := func(detail string, cause error) (*keySet, time.Duration, error) {
		return nil, 0, &Error{Kind: ErrIssuerUnreachable, Issuer: issuer, Detail: detail, Err: cause}
	}
	discoveryURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	body, ttl1, err := v.get(ctx, discoveryURL, maxDiscoveryBytes)
	if err != nil {
		return fail("discovery", err)
	}
	doc, err := jwtparse.Object(body)
	if err != nil {
		return fail("discovery document is not a JSON object", nil)
	}
	docIssuer, _, err := doc.StringMember("issuer")
	if err != nil {
		return fail("discovery issuer is not a string", nil)
	}
	if docIssuer != issuer {
		return fail(fmt.Sprintf("discovery document names issuer %q", clip(docIssuer)), nil)
	}
	jwksURI, ok, err := doc.StringMember("jwks_uri")
	if err != nil || !ok {
		return fail("discovery document has no jwks_uri", nil)
	}
	if err := checkHTTPSURL(jwksURI, "jwks_uri"); err != nil {
		return fail(err.Error(), nil)
	}
	body, ttl2, err := v.get(ctx, jwksURI, maxJWKSBytes)
	if err != nil {
		return fail("JWK Set", err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return fail(err.Error(), nil)
	}
	return keys, min(ttl1, ttl2), nil
}

// get fetches url, which must answer 200 with at most limit bytes, and
// returns the body and how long it may be cached for: the configured TTL,
// shortened by a smaller Cache-Control max-age but not below minMaxAge.
func (v *Verifier) get(ctx context.Context, url string, limit int64) ([]byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, 0, fmt.Errorf("GET %s: HTTP %d", clip(url), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", clip(url), err)
	}
	if int64(len(body)) > limit {
		return nil, 0, fmt.Errorf("GET %s: response larger than %d bytes", clip(url), limit)
	}
	ttl := v.ttl
	if maxAge, ok := cacheMaxAge(resp.Header); ok && maxAge < ttl {
		ttl = min(ttl, max(maxAge, minMaxAge))
	}
	return body, ttl, nil
}

// cacheMaxAge reads how long a response may be cached from its
// Cache-Control header: max-age, or zero for no-store and no-cache.
func cacheMaxAge(h http.Header) (time.Duration, bool) {
	var age time.Duration
	found := false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
				if err != nil || n < 0 {
					continue
				}
				d := time.Duration(n) * time.Second
				if n > int64(1<<62)/int64(time.Second) {
					d = 1 << 62
				}
				if !found || d < age {
					age, found = d, true
				}
			}
		}
	}
	return age, found
}
