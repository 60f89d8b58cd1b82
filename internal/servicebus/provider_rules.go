package servicebus

// Shared access authorization rules of Service Bus namespaces and queues:
//
//	…/providers/Microsoft.ServiceBus/namespaces/{ns}/authorizationRules[/{rule}[/listKeys|/regenerateKeys]]
//	…/providers/Microsoft.ServiceBus/namespaces/{ns}/queues/{q}/authorizationRules[/{rule}[/listKeys|/regenerateKeys]]
//
// A rule is a generic ARM resource below its parent, so deleting the
// namespace or queue deletes its rules. Its keys (two, 256 random bits in
// base64, as Azure's) are stored sealed under the KEK in the form package
// servicebus owns and reads on the data plane; a GET returns only the
// rights, listKeys the keys and connection strings. Every new namespace
// gets RootManageSharedAccessKey (Listen, Send, Manage), as Azure's does.
// Shapes from Azure/azure-rest-api-specs, servicebus stable/2021-11-01
// examples (SBNameSpaceAuthorizationRuleGet, SBQueueAuthorizationRuleCreate,
// SBQueueAuthorizationRuleRegenerateKey).

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

// defaultRuleName is the rule every namespace is created with.
const defaultRuleName = "RootManageSharedAccessKey"

// ruleKind is what differs between namespace and queue rules.
type ruleKind struct {
	typ                                    string // the stored type
	wireType                               string // the type as Azure writes it in responses
	read, write, del, listKeys, regenerate string
}

var (
	namespaceRules = ruleKind{typ: NamespaceRuleType, wireType: "Microsoft.ServiceBus/Namespaces/AuthorizationRules",
		read: sbNamespaceType + "/authorizationRules/read", write: sbNamespaceType + "/authorizationRules/write",
		del: sbNamespaceType + "/authorizationRules/delete", listKeys: sbNamespaceType + "/authorizationRules/listKeys/action",
		regenerate: sbNamespaceType + "/authorizationRules/regenerateKeys/action"}
	queueRules = ruleKind{typ: QueueRuleType, wireType: "Microsoft.ServiceBus/Namespaces/Queues/AuthorizationRules",
		read: sbQueueType + "/authorizationRules/read", write: sbQueueType + "/authorizationRules/write",
		del: sbQueueType + "/authorizationRules/delete", listKeys: sbQueueType + "/authorizationRules/listKeys/action",
		regenerate: sbQueueType + "/authorizationRules/regenerateKeys/action"}
)

func ruleKindOf(rq *rp.Request) ruleKind {
	if rq.Path.Child != "" {
		return queueRules
	}
	return namespaceRules
}

// sbRulePath recognises the authorization rule paths; ok is false for any
// other path (a namespace or queue path is typedPath's).
func sbRulePath(segs []string) (ap rp.Path, ok bool, err error) {
	is := func(i int, s string) bool { return i < len(segs) && strings.EqualFold(segs[i], s) }
	if len(segs) < 9 || !is(0, "subscriptions") || !is(2, "resourceGroups") || !is(4, "providers") ||
		!is(5, sbNamespace) || !is(6, "namespaces") || segs[1] == "" || segs[3] == "" || segs[7] == "" {
		return rp.Path{}, false, nil
	}
	ap = rp.Path{Sub: segs[1], RG: segs[3], Name: segs[7]}
	scopeText := "/subscriptions/" + ap.Sub + "/resourceGroups/" + ap.RG + "/providers/" + sbNamespaceType + "/" + ap.Name
	rest := segs[8:]
	ap.Target = targetSBNamespaceRules
	if is(8, "queues") {
		if len(rest) < 3 || rest[1] == "" {
			return rp.Path{}, false, nil
		}
		ap.Child, ap.Target = rest[1], targetSBQueueRules
		scopeText += "/queues/" + ap.Child
		rest = rest[2:]
	}
	if !strings.EqualFold(rest[0], "authorizationRules") {
		return rp.Path{}, false, nil
	}
	rest = rest[1:]
	switch len(rest) {
	case 0:
	case 1, 2:
		if rest[0] == "" {
			return rp.Path{}, true, rp.BadPath("the authorization rule name is empty")
		}
		ap.Grandchild = rest[0]
		scopeText += "/authorizationRules/" + ap.Grandchild
		if len(rest) == 2 {
			switch {
			case strings.EqualFold(rest[1], "listKeys"):
				ap.Op = "listKeys"
			case strings.EqualFold(rest[1], "regenerateKeys"):
				ap.Op = "regenerateKeys"
			default:
				return rp.Path{}, true, rp.BadPath("'%s' is not an operation of an authorization rule", rest[1])
			}
		}
	default:
		return rp.Path{}, true, rp.BadPath("the resource id has too many segments")
	}
	sc, err := rp.ParseScopeText(scopeText)
	if err != nil {
		return rp.Path{}, true, err
	}
	ap.Scope, ap.Sub = sc, sc.SubscriptionID()
	return ap, true, nil
}

// serveRules routes an authorization rules path.
func (h *provider) serveRules(rq *rp.Request) error {
	if len(h.kek) == 0 {
		return rp.NewError(http.StatusNotImplemented, "NotImplemented",
			"Shared access authorization rules are not available: this server has no key-encryption key configured.")
	}
	switch {
	case rq.Path.Grandchild == "":
		return rp.Only(rq, http.MethodGet, h.listRules)
	case rq.Path.Op == "listKeys":
		return rp.Only(rq, http.MethodPost, h.listRuleKeys)
	case rq.Path.Op == "regenerateKeys":
		return rp.Only(rq, http.MethodPost, h.regenerateRuleKeys)
	}
	return rp.ServeType(rq, false, rp.TypeHandlers{Get: h.getRule, Put: h.putRule, Delete: h.deleteRule})
}

// ---- wire shapes ----

type ruleProperties struct {
	Rights []string `json:"rights"`
}

type ruleView struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Properties ruleProperties `json:"properties"`
}

// accessKeys is the answer of listKeys and regenerateKeys.
type accessKeys struct {
	PrimaryConnectionString   string `json:"primaryConnectionString"`
	SecondaryConnectionString string `json:"secondaryConnectionString"`
	PrimaryKey                string `json:"primaryKey"`
	SecondaryKey              string `json:"secondaryKey"`
	KeyName                   string `json:"keyName"`
}

func ruleViewOf(k ruleKind, res store.Resource) (ruleView, error) {
	var p RuleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return ruleView{}, rp.InternalError(err)
	}
	if p.Rights == nil {
		p.Rights = []string{}
	}
	return ruleView{ID: res.ID, Name: res.Name, Type: k.wireType, Properties: ruleProperties{Rights: p.Rights}}, nil
}

// validRuleName: 1 to 50 letters, digits, '.', '-' and '_', starting and
// ending with a letter or digit (the ARM template reference's limits).
func validRuleName(s string) bool {
	return len(s) <= 50 && validQueueName(s)
}

// rightsOf validates a PUT's rights: each of Listen, Send and Manage (any
// case) at most once, at least one, and Manage only with both others, as
// Azure requires. They come back in their canonical spelling.
func rightsOf(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, rp.BadRequest("The property properties.rights is required: it must hold one or more of 'Listen', 'Send' and 'Manage'.")
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range in {
		var c string
		for _, known := range []string{RightListen, RightSend, RightManage} {
			if strings.EqualFold(r, known) {
				c = known
			}
		}
		if c == "" {
			return nil, rp.BadRequest("The value '%s' of properties.rights is not valid: each right must be 'Listen', 'Send' or 'Manage'.", rp.SafeText(r))
		}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if seen[RightManage] && (!seen[RightSend] || !seen[RightListen]) {
		return nil, rp.BadRequest("Assigning 'Manage' to rights requires 'Listen' and 'Send' to be included with it, e.g. [\"Manage\",\"Listen\",\"Send\"].")
	}
	return out, nil
}

// ---- lookups ----

// ruleParent returns the namespace and the id of the rule path's parent
// (the namespace or the queue); a missing parent is ParentResourceNotFound.
func ruleParent(rq *rp.Request, st store.Store, tenantID string) (store.Resource, string, error) {
	if rq.Path.Child == "" {
		ns, err := findParentNamespace(rq, st, tenantID)
		return ns, ns.ID, err
	}
	ns, q, err := findQueue(rq, st, tenantID)
	if err != nil {
		return ns, "", rp.AsParent(err, sbQueueType, rq.Path.Name+"/"+rq.Path.Child)
	}
	return ns, q.ID, nil
}

// findRule returns the namespace, the rule's record and its kind, or
// ResourceNotFound.
func findRule(rq *rp.Request, st store.Store, tenantID string) (store.Resource, store.Resource, error) {
	ns, parentID, err := ruleParent(rq, st, tenantID)
	if err != nil {
		return ns, store.Resource{}, err
	}
	k := ruleKindOf(rq)
	res, err := rp.FindTyped(rq, st, tenantID, parentID+"/authorizationRules/"+rq.Path.Grandchild, k.typ)
	if errors.Is(err, store.ErrNotFound) {
		name := rq.Path.Name + "/" + rq.Path.Grandchild
		if rq.Path.Child != "" {
			name = rq.Path.Name + "/" + rq.Path.Child + "/" + rq.Path.Grandchild
		}
		return ns, store.Resource{}, rp.ResourceNotFound(k.typ, rq.Path.RG, name)
	} else if err != nil {
		return ns, store.Resource{}, rp.InternalError(err)
	}
	return ns, res, nil
}

// ---- records ----

// ruleRecord builds the stored record of a rule with the id, sealing its
// keys under the KEK.
func (h *provider) ruleRecord(rq *rp.Request, k ruleKind, ns store.Resource, id, name string, rights []string, primary, secondary string) (store.Resource, error) {
	p := RuleProperties{Rights: rights}
	var err error
	if p.PrimaryKeySealed, err = SealRuleKey(h.kek, id, false, primary); err != nil {
		return store.Resource{}, rp.InternalError(err)
	}
	if p.SecondaryKeySealed, err = SealRuleKey(h.kek, id, true, secondary); err != nil {
		return store.Resource{}, rp.InternalError(err)
	}
	props, err := json.Marshal(p)
	if err != nil {
		return store.Resource{}, rp.InternalError(err)
	}
	now := rq.Now().UTC()
	return store.Resource{TenantID: ns.TenantID, SubscriptionID: ns.SubscriptionID, ResourceGroup: ns.ResourceGroup, ID: id, Type: k.typ,
		Name: name, Location: ns.Location, Properties: props, Created: now, Updated: now}, nil
}

// createDefaultRule gives a namespace just created its
// RootManageSharedAccessKey. Without a KEK there are no rules at all.
func (h *provider) createDefaultRule(rq *rp.Request, tx store.Store, ns store.Resource) error {
	if len(h.kek) == 0 {
		return nil
	}
	res, err := h.ruleRecord(rq, namespaceRules, ns, ns.ID+"/authorizationRules/"+defaultRuleName, defaultRuleName,
		[]string{RightListen, RightManage, RightSend}, NewRuleKey(), NewRuleKey())
	if err != nil {
		return err
	}
	if err := tx.CreateResource(rq.Ctx, res); err != nil {
		return rp.InternalError(err)
	}
	return nil
}

// keysOf opens a rule's keys and writes its connection strings.
func (h *provider) keysOf(rq *rp.Request, ns, rule store.Resource) (accessKeys, error) {
	_, primary, secondary, err := OpenRule(h.kek, rule)
	if err != nil {
		return accessKeys{}, rp.InternalError(err)
	}
	conn := func(key string) string {
		s := "Endpoint=sb://" + strings.ToLower(ns.Name) + ".servicebus.windows.net/;SharedAccessKeyName=" + rule.Name + ";SharedAccessKey=" + key
		if rq.Path.Child != "" {
			// The queue's stored name: the rule's id is {queue id}/authorizationRules/{rule}.
			q := strings.TrimSuffix(rule.ID, "/authorizationRules/"+rule.Name)
			s += ";EntityPath=" + q[strings.LastIndexByte(q, '/')+1:]
		}
		return s
	}
	return accessKeys{PrimaryConnectionString: conn(primary), SecondaryConnectionString: conn(secondary),
		PrimaryKey: primary, SecondaryKey: secondary, KeyName: rule.Name}, nil
}

// ---- operations ----

func (h *provider) getRule(rq *rp.Request) error {
	k := ruleKindOf(rq)
	tenantID, err := rq.AuthorizeAt(k.read)
	if err != nil {
		return err
	}
	_, res, err := findRule(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	v, err := ruleViewOf(k, res)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, v)
}

func (h *provider) listRules(rq *rp.Request) error {
	k := ruleKindOf(rq)
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	rq.Action = k.read
	ns, parentID, err := ruleParent(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	rs, err := rq.Store().ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: ns.SubscriptionID, Type: k.typ, IDPrefix: parentID})
	if err != nil {
		return rp.InternalError(err)
	}
	return rp.WriteReadable(rq, k.read, rs, rp.ResourceID, func(res store.Resource) (ruleView, error) { return ruleViewOf(k, res) })
}

// putRule creates a rule with new keys, or sets an existing rule's
// rights keeping its keys. Azure answers 200 either way.
func (h *provider) putRule(rq *rp.Request) error {
	k := ruleKindOf(rq)
	tenantID, err := rq.AuthorizeAt(k.write)
	if err != nil {
		return err
	}
	name := rq.Path.Grandchild
	if !validRuleName(name) {
		return rp.BadRequest("The authorization rule name '%s' is invalid. A rule name must be 1 to 50 letters, digits, '.', '-' or '_', and start and end with a letter or digit.",
			rp.SafeText(name))
	}
	var body struct {
		Properties *struct {
			Rights []string `json:"rights"`
		} `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if body.Properties == nil {
		return rp.BadRequest("The property properties.rights is required: it must hold one or more of 'Listen', 'Send' and 'Manage'.")
	}
	rights, err := rightsOf(body.Properties.Rights)
	if err != nil {
		return err
	}
	var out store.Resource
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		ns, parentID, err := ruleParent(rq, tx, tenantID)
		if err != nil {
			return err
		}
		id := parentID + "/authorizationRules/" + name
		rq.Target = id
		primary, secondary := NewRuleKey(), NewRuleKey()
		old, err := rp.FindTyped(rq, tx, tenantID, id, k.typ)
		var existing *store.Resource
		switch {
		case err == nil:
			if _, primary, secondary, err = OpenRule(h.kek, old); err != nil {
				return rp.InternalError(err)
			}
			existing, id = &old, old.ID
		case errors.Is(err, store.ErrNotFound):
		default:
			return rp.InternalError(err)
		}
		res, err := h.ruleRecord(rq, k, ns, id, name, rights, primary, secondary)
		if err != nil {
			return err
		}
		out, err = rp.WriteRecord(rq, tx, res, existing, rp.NewError(http.StatusConflict, "Conflict", "The resource id '%s' is taken by a resource of another type.", rp.SafeText(id)))
		return err
	})
	if err != nil {
		return err
	}
	v, err := ruleViewOf(k, out)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, v)
}

func (h *provider) deleteRule(rq *rp.Request) error {
	k := ruleKindOf(rq)
	tenantID, err := rq.AuthorizeAt(k.del)
	if err != nil {
		return err
	}
	return rq.DeleteAndWrite(tenantID, func(tx store.Store, _ *directory.Service) error {
		_, res, err := findRule(rq, tx, tenantID)
		if err != nil {
			return rp.NothingIfNotFound(err)
		}
		rq.Target = res.ID
		return rp.DeleteRecord(rq, tx, res.ID)
	})
}

// listRuleKeys answers the rule's keys. Reading a secret is audited like
// a change.
func (h *provider) listRuleKeys(rq *rp.Request) error {
	k := ruleKindOf(rq)
	tenantID, err := rq.AuthorizeAt(k.listKeys)
	if err != nil {
		return err
	}
	var keys accessKeys
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		ns, res, err := findRule(rq, tx, tenantID)
		if err != nil {
			return err
		}
		rq.Target = res.ID
		keys, err = h.keysOf(rq, ns, res)
		return err
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, keys)
}

// regenerateRuleKeys replaces the primary or the secondary key with a new
// random key, or with the key the body gives (a base64 256-bit key).
func (h *provider) regenerateRuleKeys(rq *rp.Request) error {
	k := ruleKindOf(rq)
	tenantID, err := rq.AuthorizeAt(k.regenerate)
	if err != nil {
		return err
	}
	var body struct {
		KeyType string  `json:"keyType"`
		Key     *string `json:"key"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	var secondary bool
	switch {
	case strings.EqualFold(body.KeyType, "PrimaryKey"):
	case strings.EqualFold(body.KeyType, "SecondaryKey"):
		secondary = true
	default:
		return rp.BadRequest("The value '%s' of keyType is not valid: it must be 'PrimaryKey' or 'SecondaryKey'.", rp.SafeText(body.KeyType))
	}
	newKey := NewRuleKey()
	if body.Key != nil && *body.Key != "" {
		if raw, err := base64.StdEncoding.DecodeString(*body.Key); err != nil || len(raw) != 32 {
			return rp.BadRequest("The key must be a base64-encoded 256-bit key (44 characters).")
		}
		newKey = *body.Key
	}
	var keys accessKeys
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		ns, res, err := findRule(rq, tx, tenantID)
		if err != nil {
			return err
		}
		rq.Target = res.ID
		rights, primary, second, err := OpenRule(h.kek, res)
		if err != nil {
			return rp.InternalError(err)
		}
		if secondary {
			second = newKey
		} else {
			primary = newKey
		}
		upd, err := h.ruleRecord(rq, ruleKindOf(rq), ns, res.ID, res.Name, rights, primary, second)
		if err != nil {
			return err
		}
		out, err := rp.WriteRecord(rq, tx, upd, &res, nil)
		if err != nil {
			return err
		}
		keys, err = h.keysOf(rq, ns, out)
		return err
	})
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, keys)
}
