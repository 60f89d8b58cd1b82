package servicebus

// Shared Access Signature authorization: the authorization rules of a
// namespace or a queue (created, listed and rotated through Resource
// Manager, package arm) and the data plane's check of a
// "SharedAccessSignature sr=…&sig=…&se=…&skn=…" header against them.
//
// A rule is a generic ARM resource below its namespace or queue, so that
// deleting the parent deletes it. Its Properties hold its rights and its
// two keys, each sealed under the KEK with additional data naming the rule
// and the key, never the keys in plaintext. This file owns that stored
// form; Resource Manager writes it through SealRuleKey and RuleProperties.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/sealed"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// Resource types of the authorization rules, as stored.
const (
	NamespaceRuleType = NamespaceType + "/authorizationRules"
	QueueRuleType     = NamespaceType + "/queues/authorizationRules"
)

// The rights a rule grants, as ARM spells them. Manage implies the other
// two (and Azure refuses a rule with Manage but without them).
const (
	RightListen = "Listen"
	RightSend   = "Send"
	RightManage = "Manage"
)

// RuleProperties is the stored form of an authorization rule
// (store.Resource.Properties): its rights and its keys sealed by
// SealRuleKey.
type RuleProperties struct {
	Rights             []string `json:"rights"`
	PrimaryKeySealed   []byte   `json:"primaryKeySealed"`
	SecondaryKeySealed []byte   `json:"secondaryKeySealed"`
}

// NewRuleKey returns a fresh key as Azure makes them: 256 random bits in
// standard base64 (44 characters).
func NewRuleKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// ruleKeyAAD binds a sealed key to its rule (by id, case-insensitively,
// as ids are) and to its slot, so that neither a key copied to another
// rule nor the primary copied over the secondary opens.
func ruleKeyAAD(ruleID string, secondary bool) []byte {
	slot := "primary"
	if secondary {
		slot = "secondary"
	}
	return []byte("servicebus/authorizationRule/" + strings.ToLower(ruleID) + "/" + slot)
}

// SealRuleKey seals a rule's key for storage in RuleProperties.
func SealRuleKey(kek []byte, ruleID string, secondary bool, key string) ([]byte, error) {
	return sealed.Seal(kek, []byte(key), ruleKeyAAD(ruleID, secondary))
}

// OpenRuleKey opens a key sealed by SealRuleKey.
func OpenRuleKey(kek []byte, ruleID string, secondary bool, sealedKey []byte) (string, error) {
	b, err := sealed.Open(kek, sealedKey, ruleKeyAAD(ruleID, secondary))
	if err != nil {
		return "", fmt.Errorf("servicebus: rule %s: %w", ruleID, err)
	}
	return string(b), nil
}

// OpenRule reads a stored rule: its rights and its two keys in plaintext.
func OpenRule(kek []byte, res store.Resource) (rights []string, primary, secondary string, err error) {
	var p RuleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return nil, "", "", fmt.Errorf("servicebus: rule %s: stored properties: %w", res.ID, err)
	}
	if primary, err = OpenRuleKey(kek, res.ID, false, p.PrimaryKeySealed); err != nil {
		return nil, "", "", err
	}
	if secondary, err = OpenRuleKey(kek, res.ID, true, p.SecondaryKeySealed); err != nil {
		return nil, "", "", err
	}
	return p.Rights, primary, secondary, nil
}

// sasRule is a rule as the data plane checks tokens against it; found is
// false when there is no rule of the name (remembered, too, so that a
// flood of unknown names does not reach the store).
type sasRule struct {
	found              bool
	id, name           string
	listen, send       bool
	primary, secondary []byte
}

// rule returns the rule with the id (of the type), through the cache that
// the store's generation invalidates: a regenerated key or a deleted rule
// takes effect on the next request.
func (s *Service) rule(r *http.Request, id, typ string) (sasRule, error) {
	return s.rules.Get(strings.ToLower(id), func() (sasRule, error) {
		res, err := s.st.GetResource(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !strings.EqualFold(res.Type, typ)) {
			return sasRule{}, nil
		}
		if err != nil {
			return sasRule{}, err
		}
		rights, primary, secondary, err := OpenRule(s.kek, res)
		if err != nil {
			return sasRule{}, err
		}
		rl := sasRule{found: true, id: res.ID, name: res.Name, primary: []byte(primary), secondary: []byte(secondary)}
		for _, right := range rights {
			switch right {
			case RightManage:
				rl.listen, rl.send = true, true
			case RightListen:
				rl.listen = true
			case RightSend:
				rl.send = true
			}
		}
		return rl, nil
	})
}

// authorizeSAS checks a SharedAccessSignature header: the rule named by
// skn on the queue, else on the namespace; the signature by either of its
// keys; the expiry; that sr covers the request; and the rule's right for
// action (Send to send, Listen to receive, peek and settle; Manage implies
// both). Every refusal is a 401 with Service Bus's error body, audited.
func (s *Service) authorizeSAS(q *request, action, header string) bool {
	entity := "sb://" + q.host + "/" + q.rt.queue
	q.tenant = q.ns.TenantID
	if len(s.kek) == 0 {
		s.refuseSAS(q, action, "no key-encryption key is configured: SAS is unavailable",
			"InvalidSignature: Shared Access Signature authorization is not available on this service. Resource: '"+entity+"'.")
		return false
	}
	tok, err := ParseSAS(header)
	if err != nil {
		s.refuseSAS(q, action, err.Error(), "MalformedToken: "+err.Error()+". Resource: '"+entity+"'.")
		return false
	}
	q.actor = "sas:" + tok.KeyName
	var rl sasRule
	if !strings.Contains(tok.KeyName, "/") && tok.KeyName != "." && tok.KeyName != ".." {
		for _, c := range []struct{ id, typ string }{
			{q.ns.ID + "/queues/" + q.rt.queue + "/authorizationRules/" + tok.KeyName, QueueRuleType},
			{q.ns.ID + "/authorizationRules/" + tok.KeyName, NamespaceRuleType},
		} {
			if rl, err = s.rule(q.r, c.id, c.typ); err != nil {
				s.internal(q.w, q.r, "authorization rule lookup", err)
				return false
			}
			if rl.found {
				break
			}
		}
	}
	// An unknown rule reads as a bad signature, so that the answer tells
	// no one which rule names exist.
	badSig := "InvalidSignature: The token has an invalid signature. Resource: '" + entity + "'."
	if !rl.found {
		s.refuseSAS(q, action, "no authorization rule named "+tok.KeyName, badSig)
		return false
	}
	q.actor = "sas:" + rl.id
	requestURI := "https://" + q.host + q.r.URL.Path
	now := s.broker.now()
	err = tok.Verify(rl.primary, requestURI, now)
	if errors.Is(err, ErrSASSignature) {
		err = tok.Verify(rl.secondary, requestURI, now)
	}
	switch {
	case errors.Is(err, ErrSASSignature):
		s.refuseSAS(q, action, "signature matches neither key of "+rl.id, badSig)
		return false
	case errors.Is(err, ErrSASExpired):
		s.refuseSAS(q, action, "token expired at "+tok.Expiry.Format(time.RFC3339),
			fmt.Sprintf("ExpiredToken: The token is expired. Expiration time: '%s'. Resource: '%s'.", tok.Expiry.UTC().Format("2006-01-02 15:04:05Z"), entity))
		return false
	case errors.Is(err, ErrSASScope):
		s.refuseSAS(q, action, "token resource "+tok.Resource+" does not cover "+requestURI,
			fmt.Sprintf("InvalidAudience: The token's resource '%s' does not cover the resource '%s'.", clip(tok.Resource, 300), entity))
		return false
	case err != nil:
		s.refuseSAS(q, action, err.Error(), badSig)
		return false
	}
	if (action == ActionSend && !rl.send) || (action != ActionSend && !rl.listen) {
		s.refuse(q, action, "authorization rule "+rl.id+" lacks the right")
		return false
	}
	return true
}

// refuseSAS audits a refused SAS and answers 401 with detail.
func (s *Service) refuseSAS(q *request, action, reason, detail string) {
	claim := "listen"
	if action == ActionSend {
		claim = "send"
	}
	_ = s.audit.Record(q.r.Context(), store.AuditRecord{Actor: q.actor, ActorTenant: q.tenant, TargetTenant: q.ns.TenantID,
		Action: "servicebus." + claim, Target: q.ns.Name + "/" + q.rt.queue, Result: "Unauthorized", Detail: clip(reason, 1000)})
	WriteError(q.w, http.StatusUnauthorized, detail)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
