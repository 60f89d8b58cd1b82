package token

import "strings"

// packedClaims are a verified token's claims as a VerifiedCache keeps
// them (issue 16: a fan-out of 10,000 customers keeps some 30,000): every
// string claim in one string, each once (sub repeats oid, iss holds tid,
// "CP1" and "1.0" are stored once), where the decoded Claims hold some
// twenty strings allocated apart and a struct mostly of empty fields.
// unpack gives back exactly the Claims that were packed, substrings of
// that one string, without allocating.
type packedClaims struct {
	issuedAt, notBefore, expires int64
	text                         string
	spans                        [numTextClaims]span
	items                        []string // the list claims' elements, in order, substrings of text
	ends                         [numListClaims]uint16
	nonNil                       uint8 // bit i: list claim i was present (an empty list is not nil)
}

// span is a string claim's place in packedClaims.text.
type span struct{ off, n uint16 }

const (
	numTextClaims = 22
	numListClaims = 5
)

// texts points at every string claim of c; lists at every list claim.
// TestPackedClaimsKeepEveryClaim fails when a claim is added to Claims
// and not here.
func (c *Claims) texts() [numTextClaims]*string {
	return [numTextClaims]*string{&c.Audience, &c.Issuer, &c.TenantID, &c.ObjectID, &c.Subject, &c.IdentType, &c.IDP,
		&c.AppID, &c.AppIDACR, &c.AZP, &c.AZPACR, &c.Scope, &c.Name, &c.PreferredUsername, &c.UniqueName, &c.UPN,
		&c.Nonce, &c.AIO, &c.RH, &c.UTI, &c.Version, &c.ManagedIdentityResourceID}
}

func (c *Claims) lists() [numListClaims]*[]string {
	return [numListClaims]*[]string{&c.Roles, &c.Groups, &c.WIDs, &c.AMR, &c.ClientCapabilities}
}

// pack packs c; ok is false for claims too large for its 16-bit offsets
// (never those of a token short enough to cache).
func pack(c *Claims) (p packedClaims, ok bool) {
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
	buf := make([]byte, 0, total)
	place := func(s string) span {
		if s == "" {
			return span{}
		}
		i := strings.Index(string(buf), s) // buf's bytes are only appended to
		if i < 0 {
			i = len(buf)
			buf = append(buf, s...)
		}
		return span{uint16(i), uint16(len(s))}
	}
	for i, s := range texts {
		p.spans[i] = place(*s)
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
			listSpans = append(listSpans, place(s))
		}
		p.ends[i] = uint16(len(listSpans))
	}
	p.text = string(buf)
	if items > 0 {
		p.items = make([]string, items)
		for i, sp := range listSpans {
			p.items[i] = p.at(sp)
		}
	}
	p.issuedAt, p.notBefore, p.expires = c.IssuedAt, c.NotBefore, c.Expires
	return p, true
}

func (p *packedClaims) at(sp span) string { return p.text[sp.off : sp.off+sp.n] }

// unpack returns the claims packed. Their lists share p's items (with
// no room to append into a neighbour's): callers must not modify them,
// as VerifiedCache.Verify says.
func (p *packedClaims) unpack() Claims {
	c := Claims{IssuedAt: p.issuedAt, NotBefore: p.notBefore, Expires: p.expires}
	for i, s := range c.texts() {
		*s = p.at(p.spans[i])
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
