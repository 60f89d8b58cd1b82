package token

import "strings"

// packedClaims are a verified token's claims as a VerifiedCache keeps
// them (issue 16: a fan-out of 10,000 customers keeps some 30,000): every
// string claim in one of two strings, each once (sub repeats oid, iss
// holds tid, "CP1" and "1.0" are stored once), where the decoded Claims
// hold some twenty strings allocated apart and a struct mostly of empty
// fields. The claims that say who the caller is and what it may do are in
// stable, which the tokens with the same such claims (a client's renewed
// token, whose strings the caches keyed by caller keep) share; the
// claims each token has its own (nonce, aio, rh, uti) are in volatile.
// unpack gives back exactly the Claims that were packed, substrings of
// those strings, without allocating.
type packedClaims struct {
	issuedAt, notBefore, expires int64
	stable, volatile             string
	spans                        [numTextClaims]span // texts' order: the first numStableClaims in stable
	items                        []string            // the list claims' elements, in order, substrings of stable
	ends                         [numListClaims]uint16
	nonNil                       uint8 // bit i: list claim i was present (an empty list is not nil)
}

// span is a string claim's place in its packedClaims string.
type span struct{ off, n uint16 }

const (
	numTextClaims   = 22
	numStableClaims = numTextClaims - 4
	numListClaims   = 5
)

// texts points at every string claim of c, the stable ones first (see
// packedClaims); lists at every list claim. TestPackedClaimsKeepEveryClaim
// fails when a claim is added to Claims and not here.
func (c *Claims) texts() [numTextClaims]*string {
	return [numTextClaims]*string{&c.Audience, &c.Issuer, &c.TenantID, &c.ObjectID, &c.Subject, &c.IdentType, &c.IDP,
		&c.AppID, &c.AppIDACR, &c.AZP, &c.AZPACR, &c.Scope, &c.Name, &c.PreferredUsername, &c.UniqueName, &c.UPN,
		&c.Version, &c.ManagedIdentityResourceID,
		&c.Nonce, &c.AIO, &c.RH, &c.UTI}
}

func (c *Claims) lists() [numListClaims]*[]string {
	return [numListClaims]*[]string{&c.Roles, &c.Groups, &c.WIDs, &c.AMR, &c.ClientCapabilities}
}

// packer builds one of packedClaims' strings. A strings.Builder, so that
// place searches what is built so far without copying it each time.
type packer struct{ buf strings.Builder }

// place puts s in the string (where it already is, if it is) and returns
// its span.
func (b *packer) place(s string) span {
	if s == "" {
		return span{}
	}
	i := strings.Index(b.buf.String(), s)
	if i < 0 {
		i = b.buf.Len()
		b.buf.WriteString(s)
	}
	return span{uint16(i), uint16(len(s))}
}

// String is the string built, with no room beyond it: the cache keeps it.
func (b *packer) String() string {
	if s := b.buf.String(); b.buf.Cap() == len(s) {
		return s
	}
	return strings.Clone(b.buf.String())
}

// pack packs c, its stable string passed through intern; ok is false for
// claims too large for 16-bit offsets (never those of a token short
// enough to cache).
func pack(c *Claims, intern func(string) string) (p packedClaims, ok bool) {
	texts, lists := c.texts(), c.lists()
	total, items := 0, 0
	for _, s := range texts {
		total += len(*s)
	}
	for _, l := range lists {
		items += len(*l)
		for _, s := range *l {
			total += len(s)
		}
	}
	if total > 0xffff || items > 0xffff {
		return p, false
	}
	var stable, volatile packer
	for i, s := range texts {
		if i < numStableClaims {
			p.spans[i] = stable.place(*s)
		} else {
			p.spans[i] = volatile.place(*s)
		}
	}
	var listSpans []span
	if items > 0 {
		listSpans = make([]span, 0, items)
	}
	for i, l := range lists {
		if *l != nil {
			p.nonNil |= 1 << i
		}
		for _, s := range *l {
			listSpans = append(listSpans, stable.place(s))
		}
		p.ends[i] = uint16(len(listSpans))
	}
	p.stable, p.volatile = intern(stable.String()), volatile.String()
	if items > 0 {
		p.items = make([]string, items)
		for i, sp := range listSpans {
			p.items[i] = p.stable[sp.off : sp.off+sp.n]
		}
	}
	p.issuedAt, p.notBefore, p.expires = c.IssuedAt, c.NotBefore, c.Expires
	return p, true
}

// unpack returns the claims packed. Their lists share p's items (with
// no room to append into a neighbour's): callers must not modify them,
// as VerifiedCache.Verify says.
func (p *packedClaims) unpack() Claims {
	c := Claims{IssuedAt: p.issuedAt, NotBefore: p.notBefore, Expires: p.expires}
	for i, s := range c.texts() {
		sp, text := p.spans[i], p.stable
		if i >= numStableClaims {
			text = p.volatile
		}
		*s = text[sp.off : sp.off+sp.n]
	}
	start := uint16(0)
	for i, l := range c.lists() {
		end := p.ends[i]
		switch {
		case p.nonNil&(1<<i) == 0:
		case start == end:
			*l = []string{} // present and empty, as decoded
		default:
			*l = p.items[start:end:end]
		}
		start = end
	}
	return c
}
