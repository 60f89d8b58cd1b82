package servicebus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/store"
	"github.com/tenantbridge/tenantbridge/internal/token"
)

// Who may send to or receive from a queue is decided here, once for both
// wire front-ends: REST checks the credential of every request, AMQP the
// credential a connection put on its $cbs node, when a link attaches and
// again while it lives. Each front-end only words the answer in its own
// protocol (an HTTP status, an AMQP error).

// caller is an authenticated credential, as the audit record names it.
type caller struct {
	actor string // a principal's object id, or "sas:" and the rule
	// tenant is the tenant the credential comes from: the principal's
	// home tenant (token.Claims.HomeTenant), the namespace's for a SAS.
	tenant  string
	expires time.Time // when the credential lapses (a token's exp, a SAS's se)
}

// denial is a refused credential. message is what the caller is told, in
// Service Bus's wording (the same on both protocols); reason is for the
// audit record only.
type denial struct {
	message string
	reason  string
	// revoked: the trust the token was issued through is gone
	// (continuous access evaluation); the client should get a new token.
	revoked bool
	// expired: the credential's time is up (a SAS's se, a token's exp).
	expired bool
	// audited: the refusal is recorded in the audit log (a refusal of
	// who the caller is, or of what it may do; an unreadable token is
	// not).
	audited bool
}

func (d *denial) Error() string { return d.message }

// claimOf is the SAS claim Service Bus names for a data action.
func claimOf(action string) string {
	if action == ActionSend {
		return "Send"
	}
	return "Listen"
}

// nsRef is what the checks and audits of a data action read of the
// namespace's record: its id, tenant and name. An AMQP connection keeps
// only this for its life, and the functions take only this, so that none
// can read a field the connection did not keep.
type nsRef struct {
	ID, TenantID, Name string
}

// refOf is the part of a namespace's record that the checks read.
func refOf(ns store.Resource) nsRef {
	return nsRef{ID: ns.ID, TenantID: ns.TenantID, Name: ns.Name}
}

// checkBearer decides a data action on queue for an Entra token: its
// signature, issuer and audience (Service Bus's, or the namespace's own
// host), that it was issued in the namespace's tenant, and RBAC's decision
// at the queue's scope.
func (s *Service) checkBearer(ctx context.Context, ns nsRef, host, queue, raw, action string) (caller, *denial, error) {
	entity := "sb://" + host + "/" + queue
	claims, err := s.verify.Verify(ctx, strings.TrimSpace(raw), Resource, AppID, "https://"+host, "https://"+host+"/")
	switch {
	case errors.Is(err, token.ErrTrustRevoked):
		return caller{}, &denial{revoked: true, reason: err.Error(),
			message: "InvalidToken: the token was issued through a trust that has been revoked (continuous access evaluation). Resource: '" + entity + "'."}, nil
	case errors.Is(err, token.ErrExpired):
		return caller{}, &denial{expired: true, reason: err.Error(),
			message: "ExpiredToken: the token is expired. Resource: '" + entity + "'."}, nil
	case err != nil:
		return caller{}, &denial{reason: err.Error(),
			message: "InvalidIssuer or InvalidAudience: the token is not valid for '" + entity + "'."}, nil
	}
	who := caller{actor: claims.ObjectID, tenant: claims.HomeTenant(), expires: time.Unix(claims.Expires, 0)}
	if !strings.EqualFold(claims.TenantID, ns.TenantID) {
		return who, s.unauthorized(host, queue, action, "the token's tenant does not own the namespace"), nil
	}
	allowed, reason, err := s.authz.Authorize(ctx, Access{PrincipalID: claims.ObjectID, PrincipalTenantID: claims.TenantID,
		TenantID: ns.TenantID, DataAction: action, Scope: ns.ID + "/queues/" + queue})
	if err != nil {
		return who, nil, err
	}
	if !allowed {
		return who, s.unauthorized(host, queue, action, reason), nil
	}
	return who, nil, nil
}

// unauthorized is Service Bus's answer to a credential without the claim
// an action needs.
func (s *Service) unauthorized(host, queue, action, reason string) *denial {
	return &denial{audited: true, reason: reason, message: fmt.Sprintf(
		"Unauthorized access. '%s' claim(s) are required to perform this operation. Resource: 'sb://%s/%s'.", claimOf(action), host, queue)}
}

// checkSAS decides a data action on queue for a Shared Access Signature:
// the rule named by skn on the queue, else on the namespace; the
// signature by either of its keys; the expiry; that sr covers
// resourceURI (the request's URI, or the entity's address); and the
// rule's right (Send to send; Listen to receive, peek and settle; Manage
// implies both).
func (s *Service) checkSAS(ctx context.Context, ns nsRef, host, queue string, tok SAS, resourceURI, action string) (caller, *denial, error) {
	entity := "sb://" + host + "/" + queue
	who := caller{actor: "sas:" + tok.KeyName, tenant: ns.TenantID, expires: tok.Expiry}
	refuse := func(reason, message string) (caller, *denial, error) {
		return who, &denial{audited: true, reason: clip(reason, 1000), message: message}, nil
	}
	if len(s.kek) == 0 {
		return refuse("no key-encryption key is configured: SAS is unavailable",
			"InvalidSignature: Shared Access Signature authorization is not available on this service. Resource: '"+entity+"'.")
	}
	var rl sasRule
	if !strings.Contains(tok.KeyName, "/") && tok.KeyName != "." && tok.KeyName != ".." {
		for _, c := range []struct{ id, typ string }{
			{ns.ID + "/queues/" + queue + "/authorizationRules/" + tok.KeyName, QueueRuleType},
			{ns.ID + "/authorizationRules/" + tok.KeyName, NamespaceRuleType},
		} {
			var err error
			if rl, err = s.rule(ctx, c.id, c.typ); err != nil {
				return who, nil, err
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
		return refuse("no authorization rule named "+tok.KeyName, badSig)
	}
	who.actor = "sas:" + rl.id
	now := s.broker.now()
	err := tok.Verify(rl.primary, resourceURI, now)
	if errors.Is(err, ErrSASSignature) {
		err = tok.Verify(rl.secondary, resourceURI, now)
	}
	switch {
	case errors.Is(err, ErrSASSignature):
		return refuse("signature matches neither key of "+rl.id, badSig)
	case errors.Is(err, ErrSASExpired):
		_, d, _ := refuse("token expired at "+tok.Expiry.Format(time.RFC3339),
			fmt.Sprintf("ExpiredToken: The token is expired. Expiration time: '%s'. Resource: '%s'.", tok.Expiry.UTC().Format("2006-01-02 15:04:05Z"), entity))
		d.expired = true
		return who, d, nil
	case errors.Is(err, ErrSASScope):
		return refuse("token resource "+tok.Resource+" does not cover "+resourceURI,
			fmt.Sprintf("InvalidAudience: The token's resource '%s' does not cover the resource '%s'.", clip(tok.Resource, 300), entity))
	case err != nil:
		return refuse(err.Error(), badSig)
	}
	if (action == ActionSend && !rl.send) || (action != ActionSend && !rl.listen) {
		return who, s.unauthorized(host, queue, action, "authorization rule "+rl.id+" lacks the right"), nil
	}
	return who, nil, nil
}

// auditCrossTenant records a data action granted to a principal of
// another tenant (a provider's multi-tenant application, say): a
// cross-tenant act is always audited, in both tenants' views. Acts within
// the namespace's own tenant are not (Service Bus logs them only where
// diagnostic settings ask). REST records each request, AMQP each link
// attach (what the link's token allows for its life).
func (s *Service) auditCrossTenant(ctx context.Context, ns nsRef, queue, action string, who caller, detail string) error {
	if who.tenant == "" || strings.EqualFold(who.tenant, ns.TenantID) {
		return nil
	}
	return s.audit.Record(ctx, store.AuditRecord{Actor: who.actor, ActorTenant: who.tenant, TargetTenant: ns.TenantID,
		Action: "servicebus." + strings.ToLower(claimOf(action)), Target: ns.Name + "/" + queue, Result: "Success", Detail: detail})
}

// auditDenial records a refused data action.
func (s *Service) auditDenial(ctx context.Context, ns nsRef, queue, action string, who caller, d *denial) {
	_ = s.audit.Record(ctx, store.AuditRecord{Actor: who.actor, ActorTenant: who.tenant, TargetTenant: ns.TenantID,
		Action: "servicebus." + strings.ToLower(claimOf(action)), Target: ns.Name + "/" + queue, Result: "Unauthorized", Detail: d.reason})
}
