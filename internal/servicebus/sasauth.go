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
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
func (s *Service) rule(ctx context.Context, id, typ string) (sasRule, error) {
	return s.rules.Get(strings.ToLower(id), func() (sasRule, error) {
		res, err := s.st.GetResource(ctx, id)
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

// authorizeSAS checks a SharedAccessSignature header (checkSAS, with the
// request's URI as the resource the token must cover). Every refusal is a
// 401 with Service Bus's error body, audited.
func (s *Service) authorizeSAS(q *request, action, header string) bool {
	q.tenant = q.ns.TenantID
	tok, err := ParseSAS(header)
	if err != nil {
		q.actor = "sas:"
		s.writeDenial(q, action, &denial{audited: true, reason: err.Error(),
			message: "MalformedToken: " + err.Error() + ". Resource: 'sb://" + q.host + "/" + q.rt.queue + "'."})
		return false
	}
	who, d, err := s.checkSAS(q.r.Context(), refOf(q.ns), q.host, q.rt.queue, tok, "https://"+q.host+q.r.URL.Path, action)
	q.actor, q.tenant = who.actor, who.tenant
	if err != nil {
		s.internal(q.w, q.r, "authorization rule lookup", err)
		return false
	}
	if d != nil {
		s.writeDenial(q, action, d)
		return false
	}
	return true
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
