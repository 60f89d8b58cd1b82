package servicebus

// Microsoft.ServiceBus/namespaces and namespaces/queues: the management
// plane (control plane), registered with Resource Manager's front door as
// a provider (Provider). The messaging data plane of this package reads a
// queue's settings through QueueLimits; the store supplies the message
// counts of a queue GET.
//
// Both are generic ARM Resources. A namespace's name is global: no two
// namespaces of any tenant share it (case-insensitively). A queue's id
// extends its namespace's, so deleting the namespace (DeleteResource
// removes the ids below it) deletes its queues, and deleting the group
// deletes both. A queue PUT replaces the queue's properties: what the
// body leaves out takes its default. A queue's requiresSession is fixed at
// creation; its message size follows its namespace's tier (forTier).

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantbridge/tenantbridge/internal/arm/rp"
	"github.com/tenantbridge/tenantbridge/internal/directory"
	"github.com/tenantbridge/tenantbridge/internal/store"
)

const (
	// targetSBNamespaces is a namespaces id or collection.
	targetSBNamespaces rp.Target = 120
	// targetSBQueues is a queues id or collection below a namespace.
	targetSBQueues rp.Target = 121
	// targetSBNamespaceRules and targetSBQueueRules are the authorization
	// rules of a namespace and of a queue (provider_rules.go).
	targetSBNamespaceRules rp.Target = 122
	targetSBQueueRules     rp.Target = 123
	// targetSBCheckName is POST /subscriptions/{sub}/providers/Microsoft.ServiceBus/CheckNameAvailability.
	targetSBCheckName rp.Target = 124
)

// actionSBCheckName is the action Azure's operations list names for the
// name check ("checkNameAvailability/action"): it takes Contributor.
const actionSBCheckName = "Microsoft.ServiceBus/checkNameAvailability/action"

// Provider is Service Bus's control plane as a resource provider of
// Resource Manager's front door (package arm): namespaces, queues, their
// SAS authorization rules (with listKeys and regenerateKeys) and
// checkNameAvailability. kek (32 bytes) seals the rules' keys; without it
// no rule is created and the rule operations are refused. The server
// registers it with arm.Config.Providers.
func Provider(kek []byte) *rp.Provider {
	if len(kek) != 0 && len(kek) != 32 {
		panic("servicebus: the provider's KEK must be 32 bytes")
	}
	h := &provider{kek: kek}
	return &rp.Provider{Namespace: sbNamespace, Types: []rp.ResourceType{
		{Name: "namespaces", Listed: true, View: func(res store.Resource) (any, error) { return namespaceViewOf(res) },
			APIVersions: serviceBusVersions, Locations: rp.AllRegions(), Capabilities: rp.TrackedCapabilities},
		{Name: "namespaces/queues", APIVersions: serviceBusVersions},
		{Name: "namespaces/authorizationRules", APIVersions: serviceBusVersions},
		{Name: "namespaces/queues/authorizationRules", APIVersions: serviceBusVersions},
		{Name: "checkNameAvailability", APIVersions: serviceBusVersions}},
		Parse: serviceBusPath, Serve: h.serviceBus}
}

// provider serves the Microsoft.ServiceBus paths.
type provider struct {
	// kek seals the keys of the authorization rules.
	kek []byte
}

// serviceBusVersions are Microsoft.ServiceBus's api-versions, newest
// first: the published versions of its REST spec (azure-rest-api-specs,
// specification/servicebus/resource-manager), which include what the
// current SDKs send (armservicebus v1 2021-11-01 and v2
// 2022-10-01-preview) and what Debian's az 2.45 sends
// (2022-01-01-preview).
var serviceBusVersions = []string{"2024-01-01", "2023-01-01-preview", "2022-10-01-preview", "2022-01-01-preview", "2021-11-01",
	"2021-06-01-preview", "2021-01-01-preview", "2018-01-01-preview", "2017-04-01", "2015-08-01"}

const (
	sbNamespace         = "Microsoft.ServiceBus"
	sbNamespaceType     = "Microsoft.ServiceBus/namespaces"
	sbQueueType         = sbNamespaceType + "/queues"
	actionSBNamespaceRd = sbNamespaceType + "/read"
	actionSBNamespaceWr = sbNamespaceType + "/write"
	actionSBNamespaceDl = sbNamespaceType + "/delete"
	actionSBQueueRead   = sbQueueType + "/read"
	actionSBQueueWrite  = sbQueueType + "/write"
	actionSBQueueDelete = sbQueueType + "/delete"
)

// serviceBusPath recognises the Microsoft.ServiceBus paths.
func serviceBusPath(segs []string) (rp.Path, bool, error) {
	if ap, ok, err := rp.ParseCheckNamePath(segs, sbNamespace, targetSBCheckName); ok {
		return ap, true, err
	}
	if ap, ok, err := sbRulePath(segs); ok {
		return ap, true, err
	}
	return rp.TypedPath(segs, sbNamespace, "namespaces", "queues", targetSBNamespaces, targetSBQueues)
}

// serviceBus serves the Microsoft.ServiceBus paths.
func (h *provider) serviceBus(rq *rp.Request) error {
	if rq.Path.Target == targetSBCheckName {
		return h.sbCheckName(rq)
	}
	if rq.Path.Target == targetSBNamespaceRules || rq.Path.Target == targetSBQueueRules {
		return h.serveRules(rq)
	}
	if rq.Path.Target == targetSBQueues {
		return rp.ServeType(rq, rq.Path.Child == "", rp.TypeHandlers{List: h.listQueues, Get: h.getQueue, Put: h.putQueue, Delete: h.deleteQueue})
	}
	return rp.ServeType(rq, rq.Path.Name == "", rp.TypeHandlers{List: h.listNamespaces,
		Get: h.getNamespace, Put: h.putNamespace, Patch: h.patchNamespace, Delete: h.deleteNamespace})
}

// ---- ISO 8601 durations ----

// isoDuration is a non-negative duration in 100 ns ticks, .NET's TimeSpan
// resolution, so that TimeSpan.MaxValue (P10675199DT2H48M5.4775807S, Service
// Bus's "forever") is math.MaxInt64.
type isoDuration int64

const (
	tickSecond isoDuration = 10_000_000
	tickMinute             = 60 * tickSecond
	tickHour               = 60 * tickMinute
	tickDay                = 24 * tickHour
)

// maxISODuration is TimeSpan.MaxValue.
const maxISODuration isoDuration = math.MaxInt64

var errBadDuration = errors.New("not an ISO 8601 duration such as PT1M or P1DT2H30M15.5S")

// parseISODuration parses P[nY][nM][nW][nD][T[nH][nM][n[.f]S]] (a year is
// 365 days and a month 30, as .NET's XmlConvert has it). Only seconds may
// have a fraction; digits past 100 ns are dropped. Negative durations and
// durations beyond TimeSpan.MaxValue are errors.
func parseISODuration(s string) (isoDuration, error) {
	if len(s) < 3 || len(s) > 64 || s[0] != 'P' {
		return 0, errBadDuration
	}
	rest := s[1:]
	var total isoDuration
	add := func(n uint64, unit isoDuration) bool {
		if n > uint64(maxISODuration/unit) {
			return false
		}
		v := isoDuration(n) * unit
		if v > maxISODuration-total {
			return false
		}
		total += v
		return true
	}
	dateUnits := []struct {
		c    byte
		unit isoDuration
	}{{'Y', 365 * tickDay}, {'M', 30 * tickDay}, {'W', 7 * tickDay}, {'D', tickDay}}
	timeUnits := []struct {
		c    byte
		unit isoDuration
	}{{'H', tickHour}, {'M', tickMinute}, {'S', tickSecond}}
	components := 0
	inTime := false
	next := 0 // index of the next designator allowed
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, errBadDuration
			}
			inTime, next, rest = true, 0, rest[1:]
			if rest == "" {
				return 0, errBadDuration
			}
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 19 {
			return 0, errBadDuration
		}
		n, err := strconv.ParseUint(rest[:i], 10, 64)
		if err != nil {
			return 0, errBadDuration
		}
		var frac string
		if i < len(rest) && rest[i] == '.' {
			j := i + 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j == i+1 {
				return 0, errBadDuration
			}
			frac, i = rest[i+1:j], j
		}
		if i >= len(rest) {
			return 0, errBadDuration
		}
		c := rest[i]
		rest = rest[i+1:]
		units := dateUnits
		if inTime {
			units = timeUnits
		}
		k := next
		for k < len(units) && units[k].c != c {
			k++
		}
		if k == len(units) {
			return 0, errBadDuration
		}
		next = k + 1
		if frac != "" && !(inTime && c == 'S') {
			return 0, errBadDuration
		}
		if !add(n, units[k].unit) {
			return 0, errBadDuration
		}
		if frac != "" {
			if len(frac) > 7 {
				frac = frac[:7]
			}
			f, _ := strconv.ParseUint(frac+strings.Repeat("0", 7-len(frac)), 10, 64)
			if !add(f, 1) {
				return 0, errBadDuration
			}
		}
		components++
	}
	if components == 0 {
		return 0, errBadDuration
	}
	return total, nil
}

// String formats d canonically: P{d}DT{h}H{m}M{s[.f]}S without the zero
// parts, PT0S for zero.
func (d isoDuration) String() string {
	if d <= 0 {
		return "PT0S"
	}
	days, rem := d/tickDay, d%tickDay
	hours, rem := rem/tickHour, rem%tickHour
	mins, rem := rem/tickMinute, rem%tickMinute
	secs, frac := rem/tickSecond, rem%tickSecond
	var b strings.Builder
	b.WriteByte('P')
	if days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10) + "D")
	}
	if hours > 0 || mins > 0 || secs > 0 || frac > 0 {
		b.WriteByte('T')
		if hours > 0 {
			b.WriteString(strconv.FormatInt(int64(hours), 10) + "H")
		}
		if mins > 0 {
			b.WriteString(strconv.FormatInt(int64(mins), 10) + "M")
		}
		if secs > 0 || frac > 0 {
			b.WriteString(strconv.FormatInt(int64(secs), 10))
			if frac > 0 {
				b.WriteString("." + strings.TrimRight(strconv.FormatInt(int64(frac)+int64(tickSecond), 10)[1:], "0"))
			}
			b.WriteByte('S')
		}
	}
	return b.String()
}

// ---- wire shapes ----

type sbSku struct {
	Name string `json:"name"`
	Tier string `json:"tier"`
}

type namespaceProperties struct {
	ServiceBusEndpoint string    `json:"serviceBusEndpoint"`
	Status             string    `json:"status"`
	ProvisioningState  string    `json:"provisioningState"`
	CreatedAt          time.Time `json:"createdAt"`
	UpdatedAt          time.Time `json:"updatedAt"`
}

type namespaceView struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Type       string              `json:"type"`
	Location   string              `json:"location"`
	Tags       map[string]string   `json:"tags"`
	Sku        sbSku               `json:"sku"`
	Properties namespaceProperties `json:"properties"`
}

// namespaceResourceProps is what a namespace's generic record keeps.
type namespaceResourceProps struct {
	Sku sbSku `json:"sku"`
}

// queueSettings are a queue's settable properties, as kept in its generic
// record (durations in canonical ISO 8601).
type queueSettings struct {
	LockDuration                        string `json:"lockDuration"`
	MaxDeliveryCount                    int64  `json:"maxDeliveryCount"`
	DefaultMessageTimeToLive            string `json:"defaultMessageTimeToLive"`
	RequiresDuplicateDetection          bool   `json:"requiresDuplicateDetection"`
	DuplicateDetectionHistoryTimeWindow string `json:"duplicateDetectionHistoryTimeWindow"`
	DeadLetteringOnMessageExpiration    bool   `json:"deadLetteringOnMessageExpiration"`
	MaxSizeInMegabytes                  int64  `json:"maxSizeInMegabytes"`
	RequiresSession                     bool   `json:"requiresSession"`
	// MaxMessageSizeInKilobytes is set from the namespace's tier when the
	// queue is written (0 in records older than it: the Standard tier's).
	MaxMessageSizeInKilobytes int64 `json:"maxMessageSizeInKilobytes"`
}

type queueCountDetails struct {
	ActiveMessageCount             int64 `json:"activeMessageCount"`
	DeadLetterMessageCount         int64 `json:"deadLetterMessageCount"`
	ScheduledMessageCount          int64 `json:"scheduledMessageCount"`
	TransferMessageCount           int64 `json:"transferMessageCount"`
	TransferDeadLetterMessageCount int64 `json:"transferDeadLetterMessageCount"`
}

type queueProperties struct {
	queueSettings
	fixedQueueProperties
	Status       string            `json:"status"`
	MessageCount int64             `json:"messageCount"`
	SizeInBytes  int64             `json:"sizeInBytes"`
	CountDetails queueCountDetails `json:"countDetails"`
	CreatedAt    time.Time         `json:"createdAt"`
	UpdatedAt    time.Time         `json:"updatedAt"`
}

// fixedQueueProperties are the queue properties Azure has that this
// Service Bus serves only at one value: reported, so that a client that
// reads a queue sees every property (az servicebus queue show), and taken
// back at that value in a PUT (az servicebus queue update sends them all),
// any other refused (queueBodyProps.checkFixed).
type fixedQueueProperties struct {
	AutoDeleteOnIdle        string `json:"autoDeleteOnIdle"`
	EnableBatchedOperations bool   `json:"enableBatchedOperations"`
	EnablePartitioning      bool   `json:"enablePartitioning"`
	EnableExpress           bool   `json:"enableExpress"`
}

// fixedQueue is what this Service Bus serves: no auto-delete (the
// maximum, TimeSpan.MaxValue, Azure's default), batched operations (the
// default; the client sees no difference), no partitioning, no express
// entities.
func fixedQueue() fixedQueueProperties {
	return fixedQueueProperties{AutoDeleteOnIdle: maxISODuration.String(), EnableBatchedOperations: true}
}

type queueView struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Location   string          `json:"location"`
	Properties queueProperties `json:"properties"`
}

// Queue defaults and limits.
const (
	defaultLockDuration      = time.Minute
	maxLockDuration          = 5 * time.Minute
	minLockDuration          = 5 * time.Second
	defaultMaxDeliveryCount  = 10
	defaultDupWindow         = 10 * time.Minute
	minDupWindow             = 20 * time.Second
	maxDupWindow             = 7 * 24 * time.Hour
	minMessageTimeToLive     = time.Second
	defaultMaxSizeInMegabyte = 1024
	maxMaxSizeInMegabytes    = 5120
)

func ticksOf(d time.Duration) isoDuration { return isoDuration(d / 100) }

func defaultQueueSettings() queueSettings {
	return queueSettings{LockDuration: ticksOf(defaultLockDuration).String(), MaxDeliveryCount: defaultMaxDeliveryCount,
		DefaultMessageTimeToLive: maxISODuration.String(), DuplicateDetectionHistoryTimeWindow: ticksOf(defaultDupWindow).String(),
		MaxSizeInMegabytes: defaultMaxSizeInMegabyte}
}

// validNamespaceName: 6 to 50 letters, digits and hyphens, starting with a
// letter and ending with a letter or digit.
func validNamespaceName(s string) bool {
	if len(s) < 6 || len(s) > 50 || !isASCIILetter(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isASCIILetter(c) && !isASCIIDigit(c) && c != '-' {
			return false
		}
	}
	return s[len(s)-1] != '-'
}

// validQueueName: 1 to 260 letters, digits, '.', '-' and '_', starting and
// ending with a letter or digit.
func validQueueName(s string) bool {
	if len(s) < 1 || len(s) > 260 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isASCIILetter(c) && !isASCIIDigit(c) && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	ok := func(c byte) bool { return isASCIILetter(c) || isASCIIDigit(c) }
	return ok(s[0]) && ok(s[len(s)-1])
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isASCIIDigit(c byte) bool  { return c >= '0' && c <= '9' }

// namespaceViewOf and queueViewOf refuse a stored record that does not
// decode: defaults in its place would hide corruption from the data plane
// that reads these settings.
func namespaceViewOf(res store.Resource) (namespaceView, error) {
	var p namespaceResourceProps
	if len(res.Properties) > 0 {
		if err := json.Unmarshal(res.Properties, &p); err != nil {
			return namespaceView{}, rp.InternalError(fmt.Errorf("namespace %s: stored properties: %w", res.ID, err))
		}
	}
	if p.Sku.Name == "" {
		p.Sku = sbSku{Name: "Standard", Tier: "Standard"}
	}
	tags := res.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return namespaceView{ID: res.ID, Name: res.Name, Type: sbNamespaceType, Location: res.Location, Tags: tags, Sku: p.Sku,
		Properties: namespaceProperties{ServiceBusEndpoint: "https://" + strings.ToLower(res.Name) + ".servicebus.windows.net:443/",
			Status: "Active", ProvisioningState: "Succeeded", CreatedAt: res.Created.UTC(), UpdatedAt: res.Updated.UTC()}}, nil
}

func queueViewOf(res store.Resource) (queueView, error) {
	s := defaultQueueSettings()
	if len(res.Properties) > 0 {
		if err := json.Unmarshal(res.Properties, &s); err != nil {
			return queueView{}, rp.InternalError(fmt.Errorf("queue %s: stored properties: %w", res.ID, err))
		}
	}
	if s.MaxMessageSizeInKilobytes <= 0 {
		s.MaxMessageSizeInKilobytes = standardMessageKB // written before the field was
	}
	return queueView{ID: res.ID, Name: res.Name, Type: sbQueueType, Location: res.Location,
		Properties: queueProperties{queueSettings: s, fixedQueueProperties: fixedQueue(), Status: "Active", CreatedAt: res.Created.UTC(), UpdatedAt: res.Updated.UTC()}}, nil
}

func namespaceID(rq *rp.Request, g store.ResourceGroup) string {
	return "/subscriptions/" + g.SubscriptionID + "/resourceGroups/" + g.Name + "/providers/" + sbNamespaceType + "/" + rq.Path.Name
}

// findNamespace returns the namespace the path names: ResourceGroupNotFound
// or ResourceNotFound otherwise.
func findNamespace(rq *rp.Request, st store.Store, tenantID string) (store.Resource, error) {
	g, err := rp.PathGroup(rq, st)
	if err != nil {
		return store.Resource{}, err
	}
	res, err := rp.FindTyped(rq, st, tenantID, namespaceID(rq, g), sbNamespaceType)
	if errors.Is(err, store.ErrNotFound) {
		return store.Resource{}, rp.ResourceNotFound(sbNamespaceType, rq.Path.RG, rq.Path.Name)
	} else if err != nil {
		return store.Resource{}, rp.InternalError(err)
	}
	return res, nil
}

// patchNamespace serves Namespaces - Update (PATCH; Service Bus REST,
// e.g. 2021-11-01, SBNamespaceUpdateParameters: location, tags, sku,
// identity, properties; 200, 201 or 202, which armservicebus's
// NamespacesClient.Update all accept): the namespace's current location,
// tags and sku with the patch's over them, written as a PUT would write
// them. Queues have no Update operation in the spec: PATCH on one is 405.
func (h *provider) patchNamespace(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionSBNamespaceWr)
	if err != nil {
		return err
	}
	res, err := findNamespace(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	view, err := namespaceViewOf(res)
	if err != nil {
		return err
	}
	current := map[string]any{"location": view.Location, "tags": view.Tags, "sku": map[string]any{"name": view.Sku.Name, "tier": view.Sku.Tier}}
	return rp.PatchAsPut(rq, current, []string{"location", "tags", "sku"}, h.putNamespace)
}

// findParentNamespace is findNamespace for a queue path: a missing
// namespace is ParentResourceNotFound.
func findParentNamespace(rq *rp.Request, st store.Store, tenantID string) (store.Resource, error) {
	res, err := findNamespace(rq, st, tenantID)
	return res, rp.AsParent(err, sbNamespaceType, rq.Path.Name)
}

func findQueue(rq *rp.Request, st store.Store, tenantID string) (store.Resource, store.Resource, error) {
	ns, err := findParentNamespace(rq, st, tenantID)
	if err != nil {
		return store.Resource{}, store.Resource{}, err
	}
	q, err := rp.FindTyped(rq, st, tenantID, ns.ID+"/queues/"+rq.Path.Child, sbQueueType)
	if errors.Is(err, store.ErrNotFound) {
		return ns, store.Resource{}, rp.ResourceNotFound(sbQueueType, rq.Path.RG, rq.Path.Name+"/"+rq.Path.Child)
	} else if err != nil {
		return ns, store.Resource{}, rp.InternalError(err)
	}
	return ns, q, nil
}

// ---- namespaces ----

func (h *provider) getNamespace(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionSBNamespaceRd)
	if err != nil {
		return err
	}
	res, err := findNamespace(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	v, err := namespaceViewOf(res)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, v)
}

func (h *provider) listNamespaces(rq *rp.Request) error {
	tenantID, err := rq.ListTenant(actionSBNamespaceRd)
	if err != nil {
		return err
	}
	rs, err := rq.Store().ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: rq.Path.Sub, ResourceGroup: rq.Path.RG, Type: sbNamespaceType})
	if err != nil {
		return rp.InternalError(err)
	}
	rs = slices.DeleteFunc(rs, func(res store.Resource) bool { return !strings.EqualFold(res.TenantID, tenantID) })
	return rp.WriteReadable(rq, actionSBNamespaceRd, rs, rp.ResourceID, namespaceViewOf)
}

func namespaceExists(name string) error {
	return rp.NewError(http.StatusConflict, "Conflict", "The namespace name '%s' is already in use. Namespace names are globally unique, so it is possible that the name is already taken.", rp.SafeText(name))
}

func (h *provider) putNamespace(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionSBNamespaceWr)
	if err != nil {
		return err
	}
	name := rq.Path.Name
	if !validNamespaceName(name) {
		return rp.BadRequest(
			"The namespace name '%s' is invalid. A namespace name must be 6 to 50 letters, digits or hyphens, start with a letter and end with a letter or digit.", rp.SafeText(name))
	}
	var body struct {
		Location string            `json:"location"`
		Tags     map[string]string `json:"tags"`
		Sku      *struct {
			Name string `json:"name"`
			Tier string `json:"tier"`
		} `json:"sku"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	location, err := rp.CheckLocation(body.Location, sbNamespaceType)
	if err != nil {
		return err
	}
	if err := rp.CheckTags(body.Tags); err != nil {
		return err
	}
	sku := sbSku{Name: "Standard", Tier: "Standard"}
	if body.Sku != nil && body.Sku.Name != "" {
		switch strings.ToLower(body.Sku.Name) {
		case "basic":
			sku = sbSku{Name: "Basic", Tier: "Basic"}
		case "standard":
		case "premium":
			sku = sbSku{Name: "Premium", Tier: "Premium"}
		default:
			return rp.BadRequest("The sku name '%s' is not valid: it must be 'Basic', 'Standard' or 'Premium'.", rp.SafeText(body.Sku.Name))
		}
	}
	propsJSON, err := json.Marshal(namespaceResourceProps{Sku: sku})
	if err != nil {
		return rp.InternalError(err)
	}
	status := http.StatusOK
	var out store.Resource
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		now := rq.Now().UTC()
		g, err := rp.PathGroup(rq, tx)
		if err != nil {
			return err
		}
		id := namespaceID(rq, g)
		rq.Target = id
		res := store.Resource{TenantID: tenantID, SubscriptionID: g.SubscriptionID, ResourceGroup: g.Name, ID: id, Type: sbNamespaceType,
			Name: name, Location: location, Tags: body.Tags, Properties: propsJSON, Created: now, Updated: now}
		old, err := tx.GetResource(rq.Ctx, id)
		var existing *store.Resource
		switch {
		case err == nil:
			if !strings.EqualFold(old.Type, sbNamespaceType) || !strings.EqualFold(old.TenantID, tenantID) {
				return namespaceExists(name)
			}
			if old.Location != location {
				return rp.LocationMoved(old.Name, old.Location, g.Name, location)
			}
			existing = &old
		case errors.Is(err, store.ErrNotFound) && rq.IsPatch():
			return rp.ResourceNotFound(sbNamespaceType, rq.Path.RG, name)
		case errors.Is(err, store.ErrNotFound):
			taken, err := namespaceNameTaken(rq, tx, name)
			if err != nil {
				return err
			}
			if taken {
				return namespaceExists(name)
			}
			status = http.StatusCreated
		default:
			return rp.InternalError(err)
		}
		out, err = rp.WriteRecord(rq, tx, res, existing, namespaceExists(name))
		if err != nil || existing != nil {
			return err
		}
		return h.createDefaultRule(rq, tx, out)
	})
	if err != nil {
		return err
	}
	v, err := namespaceViewOf(out)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, v)
}

// namespaceNameTaken reports whether a namespace of that name exists in
// any subscription of any tenant: one ResourcesNamed lookup, not a list
// per tenant (checkNameAvailability lets any caller ask it).
func namespaceNameTaken(rq *rp.Request, tx store.Store, name string) (bool, error) {
	rs, err := tx.ResourcesNamed(rq.Ctx, sbNamespaceType, name)
	if err != nil {
		return false, rp.InternalError(err)
	}
	return len(rs) > 0, nil
}

func (h *provider) deleteNamespace(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionSBNamespaceDl)
	if err != nil {
		return err
	}
	return rq.DeleteAndWrite(tenantID, func(tx store.Store, _ *directory.Service) error {
		res, err := findNamespace(rq, tx, tenantID)
		if err != nil {
			return rp.NothingIfNotFound(err)
		}
		rq.Target = res.ID
		return rp.DeleteRecord(rq, tx, res.ID)
	})
}

// ---- queues ----

func (h *provider) getQueue(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionSBQueueRead)
	if err != nil {
		return err
	}
	_, q, err := findQueue(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	v, err := h.queueViewWithCounts(rq, q)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, http.StatusOK, v)
}

// queueViewWithCounts is queueViewOf with the message counts and size
// that the data plane's store keeps.
func (h *provider) queueViewWithCounts(rq *rp.Request, res store.Resource) (queueView, error) {
	v, err := queueViewOf(res)
	if err != nil {
		return v, err
	}
	st, err := rq.Store().QueueStats(rq.Ctx, res.ID, rq.Now())
	if err != nil {
		return v, rp.InternalError(err)
	}
	v.Properties.MessageCount = st.ActiveCount + st.ScheduledCount + st.DeadLetterCount
	v.Properties.SizeInBytes = st.SizeBytes
	v.Properties.CountDetails = queueCountDetails{ActiveMessageCount: st.ActiveCount,
		DeadLetterMessageCount: st.DeadLetterCount, ScheduledMessageCount: st.ScheduledCount}
	return v, nil
}

// Message sizes by tier (Service Bus quotas, "Message size for a queue,
// topic, or subscription entity": Standard 256 KB; Premium up to 100 MB,
// set per entity with maxMessageSizeInKilobytes, 1024 by default). This
// Service Bus serves messages up to 1 MB, so a Premium queue takes 1024
// and no more.
const (
	standardMessageKB = 256
	premiumMessageKB  = 1024
)

// skuTier is a namespace sku name's tier ("" is Standard's).
func skuTier(name string) string {
	switch strings.ToLower(name) {
	case "basic":
		return "Basic"
	case "premium":
		return "Premium"
	}
	return "Standard"
}

// forTier applies the namespace's tier to a queue's settings: the
// message size (Premium: maxMessageSizeInKilobytes; Basic and Standard:
// 256 KB, not settable) and sessions, which the Basic tier does not have
// ("Message sessions": "The basic tier of Service Bus doesn't support
// sessions").
func (s *queueSettings) forTier(tier string, p *queueBodyProps) error {
	var asked *int64
	if p != nil {
		asked = p.MaxMessageSizeInKilobytes
	}
	switch tier {
	case "Premium":
		s.MaxMessageSizeInKilobytes = premiumMessageKB
		if asked != nil && *asked != premiumMessageKB {
			return rp.BadRequest("The value %d of properties.maxMessageSizeInKilobytes is out of range: this Service Bus serves messages up to %d KB.", *asked, premiumMessageKB)
		}
	default:
		s.MaxMessageSizeInKilobytes = standardMessageKB
		if asked != nil && *asked != standardMessageKB {
			return rp.BadRequest("properties.maxMessageSizeInKilobytes can be set only on queues of a Premium namespace; the %s tier's messages are at most %d KB.", tier, standardMessageKB)
		}
		if tier == "Basic" && s.RequiresSession {
			return rp.BadRequest("Sessions are not supported in the Basic tier: properties.requiresSession must be false.")
		}
	}
	return nil
}

// QueueMaxMessageBytes is the largest message a queue takes, body and
// properties: its maxMessageSizeInKilobytes.
func QueueMaxMessageBytes(res store.Resource) (int, error) {
	v, err := queueViewOf(res)
	if err != nil {
		return 0, err
	}
	return int(v.Properties.MaxMessageSizeInKilobytes) << 10, nil
}

// QueueLimits reads the settings of a queue's resource record as the
// message store applies them: the data plane's view of what a queue PUT
// set. A record that does not decode is an error, never the defaults.
func QueueLimits(res store.Resource) (store.QueueLimits, error) {
	v, err := queueViewOf(res)
	if err != nil {
		return store.QueueLimits{}, err
	}
	s := v.Properties.queueSettings
	var lim store.QueueLimits
	durations := []struct {
		field string
		iso   string
		out   *time.Duration
	}{{"lockDuration", s.LockDuration, &lim.LockDuration},
		{"defaultMessageTimeToLive", s.DefaultMessageTimeToLive, &lim.DefaultTimeToLive},
		{"duplicateDetectionHistoryTimeWindow", s.DuplicateDetectionHistoryTimeWindow, &lim.DuplicateWindow}}
	for _, d := range durations {
		ticks, err := parseISODuration(d.iso)
		if err != nil {
			return lim, fmt.Errorf("arm: queue %s: stored %s %q: %w", res.ID, d.field, d.iso, err)
		}
		if ticks >= isoDuration(math.MaxInt64/100) { // beyond time.Duration: forever
			*d.out = 0
			continue
		}
		*d.out = time.Duration(ticks) * 100
	}
	if lim.LockDuration <= 0 || s.MaxDeliveryCount < 1 || s.MaxSizeInMegabytes < 1 {
		return lim, fmt.Errorf("arm: queue %s: stored settings out of range: %+v", res.ID, s)
	}
	lim.MaxDeliveryCount = int(s.MaxDeliveryCount)
	lim.DuplicateDetection = s.RequiresDuplicateDetection
	lim.DeadLetterOnExpiration = s.DeadLetteringOnMessageExpiration
	lim.RequiresSession = s.RequiresSession
	lim.MaxSizeBytes = s.MaxSizeInMegabytes << 20
	return lim, nil
}

func (h *provider) listQueues(rq *rp.Request) error {
	tenantID, err := rq.ScopeTenant()
	if err != nil {
		return err
	}
	rq.Action = actionSBQueueRead
	ns, err := findParentNamespace(rq, rq.Store(), tenantID)
	if err != nil {
		return err
	}
	rs, err := rq.Store().ListResources(rq.Ctx, store.ResourceQuery{SubscriptionID: ns.SubscriptionID, Type: sbQueueType, IDPrefix: ns.ID})
	if err != nil {
		return rp.InternalError(err)
	}
	return rp.WriteReadable(rq, actionSBQueueRead, rs, rp.ResourceID, func(res store.Resource) (queueView, error) {
		return h.queueViewWithCounts(rq, res)
	})
}

// queueSettingsOf validates a queue PUT's properties and fills in the
// defaults.
func queueSettingsOf(p *queueBodyProps) (queueSettings, error) {
	s := defaultQueueSettings()
	if p == nil {
		return s, nil
	}
	if err := p.checkFixed(); err != nil {
		return s, err
	}
	dur := func(field string, v *string, lo, hi isoDuration, out *string) error {
		if v == nil {
			return nil
		}
		d, err := parseISODuration(*v)
		if err != nil {
			return rp.BadRequest("The value '%s' of properties.%s is %s.", rp.SafeText(*v), field, err)
		}
		if d < lo || d > hi {
			return rp.BadRequest("The value '%s' of properties.%s is out of range: it must be between %s and %s.", rp.SafeText(*v), field, lo, hi)
		}
		*out = d.String()
		return nil
	}
	if err := dur("lockDuration", p.LockDuration, ticksOf(minLockDuration), ticksOf(maxLockDuration), &s.LockDuration); err != nil {
		return s, err
	}
	if err := dur("defaultMessageTimeToLive", p.DefaultMessageTimeToLive, ticksOf(minMessageTimeToLive), maxISODuration, &s.DefaultMessageTimeToLive); err != nil {
		return s, err
	}
	if err := dur("duplicateDetectionHistoryTimeWindow", p.DuplicateDetectionHistoryTimeWindow, ticksOf(minDupWindow), ticksOf(maxDupWindow), &s.DuplicateDetectionHistoryTimeWindow); err != nil {
		return s, err
	}
	if p.MaxDeliveryCount != nil {
		if *p.MaxDeliveryCount < 1 || *p.MaxDeliveryCount > math.MaxInt32 {
			return s, rp.BadRequest("The value %d of properties.maxDeliveryCount is out of range: it must be at least 1.", *p.MaxDeliveryCount)
		}
		s.MaxDeliveryCount = *p.MaxDeliveryCount
	}
	if p.MaxSizeInMegabytes != nil {
		if *p.MaxSizeInMegabytes < defaultMaxSizeInMegabyte || *p.MaxSizeInMegabytes > maxMaxSizeInMegabytes {
			return s, rp.BadRequest("The value %d of properties.maxSizeInMegabytes is out of range: it must be between %d and %d.", *p.MaxSizeInMegabytes, defaultMaxSizeInMegabyte, maxMaxSizeInMegabytes)
		}
		s.MaxSizeInMegabytes = *p.MaxSizeInMegabytes
	}
	if p.RequiresSession != nil {
		s.RequiresSession = *p.RequiresSession
	}
	if p.RequiresDuplicateDetection != nil {
		s.RequiresDuplicateDetection = *p.RequiresDuplicateDetection
	}
	if p.DeadLetteringOnMessageExpiration != nil {
		s.DeadLetteringOnMessageExpiration = *p.DeadLetteringOnMessageExpiration
	}
	return s, nil
}

type queueBodyProps struct {
	LockDuration                        *string `json:"lockDuration"`
	MaxDeliveryCount                    *int64  `json:"maxDeliveryCount"`
	DefaultMessageTimeToLive            *string `json:"defaultMessageTimeToLive"`
	RequiresDuplicateDetection          *bool   `json:"requiresDuplicateDetection"`
	DuplicateDetectionHistoryTimeWindow *string `json:"duplicateDetectionHistoryTimeWindow"`
	DeadLetteringOnMessageExpiration    *bool   `json:"deadLetteringOnMessageExpiration"`
	MaxSizeInMegabytes                  *int64  `json:"maxSizeInMegabytes"`
	RequiresSession                     *bool   `json:"requiresSession"`
	MaxMessageSizeInKilobytes           *int64  `json:"maxMessageSizeInKilobytes"`

	// Taken only at the value this Service Bus serves (fixedQueue).
	AutoDeleteOnIdle              *string `json:"autoDeleteOnIdle"`
	EnableBatchedOperations       *bool   `json:"enableBatchedOperations"`
	EnablePartitioning            *bool   `json:"enablePartitioning"`
	EnableExpress                 *bool   `json:"enableExpress"`
	ForwardTo                     *string `json:"forwardTo"`
	ForwardDeadLetteredMessagesTo *string `json:"forwardDeadLetteredMessagesTo"`
	Status                        *string `json:"status"`
}

// checkFixed refuses a value of a property this Service Bus serves at one
// value only: accepting it would promise what the queue does not do
// (delete itself when idle, forward, be disabled), more than Azure.
func (p *queueBodyProps) checkFixed() error {
	unsupported := func(prop, why string) error {
		return rp.NewError(http.StatusBadRequest, "BadRequest", "The value of properties.%s is not supported by this Service Bus: %s.", prop, why)
	}
	if p.AutoDeleteOnIdle != nil {
		d, err := parseISODuration(*p.AutoDeleteOnIdle)
		if err != nil {
			return rp.BadRequest("The value '%s' of properties.autoDeleteOnIdle is %s.", rp.SafeText(*p.AutoDeleteOnIdle), err)
		}
		if d < maxISODuration {
			return unsupported("autoDeleteOnIdle", "queues are not deleted when idle; leave it at its default, "+maxISODuration.String())
		}
	}
	if p.EnablePartitioning != nil && *p.EnablePartitioning {
		return unsupported("enablePartitioning", "queues are not partitioned")
	}
	if p.EnableExpress != nil && *p.EnableExpress {
		return unsupported("enableExpress", "every message is kept durably")
	}
	if p.ForwardTo != nil && *p.ForwardTo != "" {
		return unsupported("forwardTo", "auto-forwarding is not served")
	}
	if p.ForwardDeadLetteredMessagesTo != nil && *p.ForwardDeadLetteredMessagesTo != "" {
		return unsupported("forwardDeadLetteredMessagesTo", "auto-forwarding is not served")
	}
	if p.Status != nil && !strings.EqualFold(*p.Status, "Active") {
		return unsupported("status", "a queue is Active")
	}
	return nil
}

func (h *provider) putQueue(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionSBQueueWrite)
	if err != nil {
		return err
	}
	name := rq.Path.Child
	if !validQueueName(name) {
		return rp.BadRequest(
			"The queue name '%s' is invalid. A queue name must be 1 to 260 letters, digits, '.', '-' or '_', and start and end with a letter or digit.", rp.SafeText(name))
	}
	var body struct {
		Properties *queueBodyProps `json:"properties"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	settings, err := queueSettingsOf(body.Properties)
	if err != nil {
		return err
	}
	status := http.StatusOK
	var out store.Resource
	err = rq.Change(tenantID, func(tx store.Store, _ *directory.Service) error {
		now := rq.Now().UTC()
		ns, err := findParentNamespace(rq, tx, tenantID)
		if err != nil {
			return err
		}
		nv, err := namespaceViewOf(ns)
		if err != nil {
			return err
		}
		settings := settings
		if err := settings.forTier(nv.Sku.Tier, body.Properties); err != nil {
			return err
		}
		propsJSON, err := json.Marshal(settings)
		if err != nil {
			return rp.InternalError(err)
		}
		id := ns.ID + "/queues/" + name
		rq.Target = id
		res := store.Resource{TenantID: tenantID, SubscriptionID: ns.SubscriptionID, ResourceGroup: ns.ResourceGroup, ID: id, Type: sbQueueType,
			Name: name, Location: ns.Location, Properties: propsJSON, Created: now, Updated: now}
		old, err := rp.FindTyped(rq, tx, tenantID, id, sbQueueType)
		var existing *store.Resource
		switch {
		case err == nil:
			prevView, err := queueViewOf(old)
			if err != nil {
				return err
			}
			prev := prevView.Properties
			if prev.RequiresDuplicateDetection != settings.RequiresDuplicateDetection {
				return rp.BadRequest("The property requiresDuplicateDetection cannot be changed after the queue was created (it is %t).", prev.RequiresDuplicateDetection)
			}
			// Nor can requiresSession ("Message sessions": sessions are
			// enabled "while creating an entity"; the queue's
			// RequiresSession is documented as settable at creation only).
			if prev.RequiresSession != settings.RequiresSession {
				return rp.BadRequest("The property requiresSession cannot be changed after the queue was created (it is %t).", prev.RequiresSession)
			}
			existing = &old
		case errors.Is(err, store.ErrNotFound):
			// Created or updated, Queues_CreateOrUpdate answers 200: the REST
			// spec lists no other success, and armservicebus's
			// QueuesClient.CreateOrUpdate fails on anything but 200.
		default:
			return rp.InternalError(err)
		}
		out, err = rp.WriteRecord(rq, tx, res, existing, rp.NewError(http.StatusConflict, "Conflict", "The resource id '%s' is taken by a resource of another type.", rp.SafeText(id)))
		return err
	})
	if err != nil {
		return err
	}
	v, err := queueViewOf(out)
	if err != nil {
		return err
	}
	return rp.WriteJSON(rq, status, v)
}

func (h *provider) deleteQueue(rq *rp.Request) error {
	tenantID, err := rq.AuthorizeAt(actionSBQueueDelete)
	if err != nil {
		return err
	}
	return rq.DeleteAndWrite(tenantID, func(tx store.Store, _ *directory.Service) error {
		_, q, err := findQueue(rq, tx, tenantID)
		if err != nil {
			return rp.NothingIfNotFound(err)
		}
		rq.Target = q.ID
		return rp.DeleteRecord(rq, tx, q.ID)
	})
}

// sbCheckName answers Namespaces - Check Name Availability (Service Bus
// REST, 2021-11-01): the body {"name"}; 200 {"nameAvailable", "reason":
// None, InvalidName or NameInUse, "message"}.
func (h *provider) sbCheckName(rq *rp.Request) error {
	if rq.R.Method != http.MethodPost {
		return rp.MethodNotAllowed(rq.R.Method)
	}
	if _, err := rq.AuthorizeAt(actionSBCheckName); err != nil {
		return err
	}
	var body struct {
		Name *string `json:"name"`
	}
	if err := rp.ReadBody(rq, &body); err != nil {
		return err
	}
	if body.Name == nil {
		return rp.BadRequest("The request body must have 'name'.")
	}
	type answer struct {
		NameAvailable bool   `json:"nameAvailable"`
		Reason        string `json:"reason"`
		Message       string `json:"message"`
	}
	name := *body.Name
	if !validNamespaceName(name) {
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "InvalidName",
			Message: "The specified name is not valid: a namespace name must be 6 to 50 letters, digits or hyphens, start with a letter and end with a letter or digit."})
	}
	taken, err := namespaceNameTaken(rq, rq.Store(), name)
	if err != nil {
		return err
	}
	if taken {
		return rp.WriteJSON(rq, http.StatusOK, answer{Reason: "NameInUse",
			Message: "The specified name is not available. Namespace names are globally unique, so it is possible that the name is already taken."})
	}
	return rp.WriteJSON(rq, http.StatusOK, answer{NameAvailable: true, Reason: "None"})
}

// ---- what a managed application's deployment spec checks ----

// QueueBody is the properties of a queue's PUT body (Queues - Create Or
// Update), as a managed application's deployment spec carries them.
type QueueBody = queueBodyProps

// ValidNamespaceName reports whether s may name a namespace: 6 to 50
// letters, digits and hyphens, starting with a letter and ending with a
// letter or digit.
func ValidNamespaceName(s string) bool { return validNamespaceName(s) }

// ValidQueueName reports whether s may name a queue.
func ValidQueueName(s string) bool { return validQueueName(s) }

// SkuTier is the tier of a namespace sku's name: Basic, Standard (the
// default) or Premium.
func SkuTier(name string) string { return skuTier(name) }

// CheckQueueBody refuses, as a queue PUT in a namespace of the tier would
// (an rp.Error), properties that PUT refuses.
func CheckQueueBody(tier string, p *QueueBody) error {
	s, err := queueSettingsOf(p)
	if err != nil {
		return err
	}
	return s.forTier(skuTier(tier), p)
}
