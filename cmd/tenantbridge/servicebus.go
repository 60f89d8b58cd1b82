package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// az servicebus: namespaces and queues through Resource Manager, and the
// messages of a queue through the Service Bus REST data plane
// (https://{namespace}.servicebus.windows.net), signed in with a token for
// https://servicebus.azure.net. Like the keyvault commands, these are
// clients of the public wire APIs only.

const (
	serviceBusProvider = "/providers/Microsoft.ServiceBus/namespaces"
	serviceBusScope    = "https://servicebus.azure.net/.default"
	// serviceBusDataOwner is the built-in role `servicebus namespace
	// create` assigns the caller on the new namespace: Owner of the
	// subscription has no data actions (as in Azure).
	serviceBusDataOwner     = "090c5cfd-751d-490a-894a-3ce6f1109419"
	serviceBusDataOwnerName = "Azure Service Bus Data Owner"
	// maxMessageBytes is Service Bus Standard's message size limit.
	maxMessageBytes = 256 << 10
	// longPollSlice bounds one receive's long poll below the transport's
	// response header timeout (60 s); a longer --timeout polls again.
	longPollSlice = 50 * time.Second
)

// ---- wire shapes of the management plane ----

// sbNamespace is ARM's Microsoft.ServiceBus/namespaces, with az's
// resourceGroup added.
type sbNamespace struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	Location      string            `json:"location"`
	ResourceGroup string            `json:"resourceGroup"`
	Tags          map[string]string `json:"tags"`
	Sku           struct {
		Name string `json:"name"`
		Tier string `json:"tier"`
	} `json:"sku"`
	Properties struct {
		ServiceBusEndpoint string    `json:"serviceBusEndpoint"`
		Status             string    `json:"status"`
		ProvisioningState  string    `json:"provisioningState"`
		CreatedAt          time.Time `json:"createdAt"`
		UpdatedAt          time.Time `json:"updatedAt"`
	} `json:"properties"`
}

// sbQueue is ARM's Microsoft.ServiceBus/namespaces/queues, with az's
// resourceGroup added.
type sbQueue struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	Location      string `json:"location"`
	ResourceGroup string `json:"resourceGroup"`
	Properties    struct {
		LockDuration                        string    `json:"lockDuration"`
		MaxDeliveryCount                    int64     `json:"maxDeliveryCount"`
		DefaultMessageTimeToLive            string    `json:"defaultMessageTimeToLive"`
		RequiresDuplicateDetection          bool      `json:"requiresDuplicateDetection"`
		DuplicateDetectionHistoryTimeWindow string    `json:"duplicateDetectionHistoryTimeWindow"`
		DeadLetteringOnMessageExpiration    bool      `json:"deadLetteringOnMessageExpiration"`
		MaxSizeInMegabytes                  int64     `json:"maxSizeInMegabytes"`
		RequiresSession                     bool      `json:"requiresSession"`
		MaxMessageSizeInKilobytes           int64     `json:"maxMessageSizeInKilobytes"`
		Status                              string    `json:"status"`
		MessageCount                        int64     `json:"messageCount"`
		SizeInBytes                         int64     `json:"sizeInBytes"`
		CreatedAt                           time.Time `json:"createdAt"`
		UpdatedAt                           time.Time `json:"updatedAt"`
		CountDetails                        struct {
			ActiveMessageCount             int64 `json:"activeMessageCount"`
			DeadLetterMessageCount         int64 `json:"deadLetterMessageCount"`
			ScheduledMessageCount          int64 `json:"scheduledMessageCount"`
			TransferMessageCount           int64 `json:"transferMessageCount"`
			TransferDeadLetterMessageCount int64 `json:"transferDeadLetterMessageCount"`
		} `json:"countDetails"`
	} `json:"properties"`
}

// groupOf is the resource group segment of a resource id.
func groupOf(id string) string {
	segs := strings.Split(id, "/")
	if len(segs) > 4 {
		return segs[4]
	}
	return ""
}

// namespaceOf is the namespace segment of a queue id.
func namespaceOf(queueID string) string {
	segs := strings.Split(queueID, "/")
	if len(segs) > 8 {
		return segs[8]
	}
	return ""
}

var sbNamespaceHeader = []string{"NAME", "RESOURCE GROUP", "LOCATION", "SKU", "ENDPOINT"}

func sbNamespaceRow(n sbNamespace) []string {
	return []string{n.Name, n.ResourceGroup, n.Location, n.Sku.Name, n.Properties.ServiceBusEndpoint}
}

var sbQueueHeader = []string{"NAME", "NAMESPACE", "ACTIVE", "DEAD-LETTERED", "SCHEDULED", "LOCK DURATION", "MAX DELIVERY COUNT"}

func sbQueueRow(q sbQueue) []string {
	p := q.Properties
	return []string{q.Name, namespaceOf(q.ID), strconv.FormatInt(p.CountDetails.ActiveMessageCount, 10),
		strconv.FormatInt(p.CountDetails.DeadLetterMessageCount, 10), strconv.FormatInt(p.CountDetails.ScheduledMessageCount, 10),
		p.LockDuration, strconv.FormatInt(p.MaxDeliveryCount, 10)}
}

// servicebusCommand is az servicebus.
func (c *cli) servicebusCommand() *cobra.Command {
	var tenant string
	cmd := &cobra.Command{Use: "servicebus", Short: "Manage Service Bus namespaces and queues (through Resource Manager), and send and receive messages"}
	cmd.PersistentFlags().StringVarP(&tenant, "tenant", "t", "", "tenant name, domain or id (default: the only profile)")
	sess := func() (*roleCtx, error) { return c.roleSession(tenant) }
	ns := &cobra.Command{Use: "namespace", Short: "Manage Service Bus namespaces"}
	ns.AddCommand(c.sbNamespaceCreate(sess), c.sbNamespaceShow(sess), c.sbNamespaceList(sess), c.sbNamespaceDelete(sess))
	queue := &cobra.Command{Use: "queue", Short: "Manage the queues of a namespace"}
	queue.AddCommand(c.sbQueueCreate(sess), c.sbQueueShow(sess), c.sbQueueList(sess), c.sbQueueDelete(sess))
	message := &cobra.Command{Use: "message", Short: "Send, receive and peek the messages of a queue (the Service Bus data plane)"}
	message.AddCommand(c.sbMessageSend(sess), c.sbMessageReceive(sess), c.sbMessagePeek(sess))
	cmd.AddCommand(ns, queue, message)
	return cmd
}

// ensureGroup returns the id of the resource group of subscription sub,
// creating the group in location (or defaultLocation) when it does not
// exist, and the location to create a resource in.
func (c *cli) ensureGroup(ctx context.Context, r *roleCtx, sub, group, location string) (string, string, error) {
	rg := sub + "/resourceGroups/" + group
	var g struct {
		Location string `json:"location"`
	}
	switch err := r.arm.do(ctx, http.MethodGet, rg, nil, nil, &g); {
	case isARMCode(err, "ResourceGroupNotFound"):
		loc := location
		if loc == "" {
			loc = defaultLocation
		}
		if err := r.arm.do(ctx, http.MethodPut, rg, nil, map[string]any{"location": loc}, &g); err != nil {
			return "", "", fmt.Errorf("create resource group %s: %w", group, err)
		}
		c.notef("Created resource group %s in %s.", group, g.Location)
	case err != nil:
		return "", "", err
	}
	if location == "" {
		location = g.Location
	}
	return rg, location, nil
}

func (c *cli) sbNamespaceCreate(sess roleSessionFunc) *cobra.Command {
	var sku string
	cmd := resourceCreate(c, sess, &cobra.Command{
		Use:   "create --name NAME --resource-group RG [--location L] [--sku Basic|Standard|Premium]",
		Short: "Create a namespace (and its resource group if missing), and make the caller Azure Service Bus Data Owner on it",
		Long: "Create a Service Bus namespace. The resource group is created when it does not exist. Namespace names are\n" +
			"global: 6-50 letters, digits and hyphens, starting with a letter. Owner of the subscription holds no data\n" +
			"actions (as in Azure), so the caller is also assigned Azure Service Bus Data Owner on the new namespace,\n" +
			"to send and receive with `servicebus message`.",
	}, createSpec[sbNamespace]{kind: "namespace", provider: serviceBusProvider,
		nameHelp: "namespace name: 6-50 letters, digits and hyphens, globally unique (required)",
		roleID:   serviceBusDataOwner, roleName: serviceBusDataOwnerName, header: sbNamespaceHeader, row: sbNamespaceRow,
		body: func(_ *roleCtx, location string) map[string]any {
			body := map[string]any{"location": location}
			if sku != "" {
				body["sku"] = map[string]string{"name": sku, "tier": sku}
			}
			return body
		}})
	cmd.Flags().StringVar(&sku, "sku", "", "Basic, Standard or Premium (default Standard)")
	return cmd
}

// createSpec is what the create command of a kind of resource needs: its
// provider, the help of its --name, the data role its creator gets on it,
// its table, and its PUT body in a location.
type createSpec[T any] struct {
	kind, provider, nameHelp string
	roleID, roleName         string
	header                   []string
	row                      func(T) []string
	body                     func(r *roleCtx, location string) map[string]any
}

// resourceCreate makes cmd the create command of a resource in a resource
// group it creates when missing; the caller gets s.roleName on the new
// resource, since Owner of the subscription holds no data actions.
func resourceCreate[T armResource[T]](c *cli, sess roleSessionFunc, cmd *cobra.Command, s createSpec[T]) *cobra.Command {
	var name, group, location string
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		r, err := sess()
		if err != nil {
			return err
		}
		sub, err := r.defaultScope(ctx)
		if err != nil {
			return err
		}
		rg, loc, err := c.ensureGroup(ctx, r, sub, group, location)
		if err != nil {
			return err
		}
		var res T
		if err := r.arm.do(ctx, http.MethodPut, rg+s.provider+"/"+name, nil, s.body(r, loc), &res); err != nil {
			return err
		}
		res = res.withGroup()
		if err := c.assignDataRole(ctx, r, sub, res.resourceID(), s.roleID, s.roleName, s.kind+" "+res.resourceName()); err != nil {
			return err
		}
		return c.render(cmd, res, func() table { return table{header: s.header, rows: [][]string{s.row(res)}} })
	}
	requiredFlag(cmd, &name, "name", "n", s.nameHelp)
	requiredFlag(cmd, &group, "resource-group", "g", "resource group; created when missing (required)")
	cmd.Flags().StringVarP(&location, "location", "l", "", "location (default: the resource group's, or "+defaultLocation+")")
	return cmd
}

// assignDataRole assigns role (of subscription sub) to the profile's
// service principal at scope, the id of what was just created; an existing
// assignment is fine.
func (c *cli) assignDataRole(ctx context.Context, r *roleCtx, sub, scope, roleID, roleName, what string) error {
	principal, err := r.principal(ctx, r.s.profile.ClientID)
	if err != nil {
		return fmt.Errorf("%s created, but the caller's service principal was not found: %w", what, err)
	}
	body := map[string]any{"properties": map[string]any{
		"roleDefinitionId": sub + authorizationProvider + "roleDefinitions/" + roleID,
		"principalId":      principal, "principalType": "ServicePrincipal"}}
	err = r.arm.do(ctx, http.MethodPut, scope+authorizationProvider+"roleAssignments/"+uuid.NewString(), nil, body, nil)
	switch {
	case isARMCode(err, "RoleAssignmentExists"):
	case err != nil:
		return fmt.Errorf("%s created, but assigning %s failed: %w", what, roleName, err)
	default:
		c.notef("Assigned %s on %s to this profile's service principal %s (Owner has no data actions).", roleName, what, principal)
	}
	return nil
}

// armResource is a Resource Manager resource the CLI finds by name: its
// name and id, and itself with its resource group filled from its id.
type armResource[T any] interface {
	resourceName() string
	resourceID() string
	withGroup() T
}

func (n sbNamespace) resourceName() string { return n.Name }
func (n sbNamespace) resourceID() string   { return n.ID }

func (n sbNamespace) withGroup() sbNamespace {
	n.ResourceGroup = groupOf(n.ID)
	return n
}

// listResources lists the resources of provider in a group, or in the
// subscription.
func listResources[T armResource[T]](ctx context.Context, r *roleCtx, provider, group string) ([]T, error) {
	sub, err := r.defaultScope(ctx)
	if err != nil {
		return nil, err
	}
	path := sub + provider
	if group != "" {
		path = sub + "/resourceGroups/" + group + provider
	}
	var out struct{ Value []T }
	if err := r.arm.do(ctx, http.MethodGet, path, nil, nil, &out); err != nil {
		return nil, err
	}
	rs := make([]T, 0, len(out.Value))
	for _, res := range out.Value {
		rs = append(rs, res.withGroup())
	}
	return rs, nil
}

// findResource finds a resource of provider (a kind, such as vault) by
// name, in a group or anywhere in the subscription.
func findResource[T armResource[T]](ctx context.Context, r *roleCtx, provider, kind, name, group string) (T, error) {
	var zero T
	if group != "" {
		sub, err := r.defaultScope(ctx)
		if err != nil {
			return zero, err
		}
		var res T
		if err := r.arm.do(ctx, http.MethodGet, sub+"/resourceGroups/"+group+provider+"/"+name, nil, nil, &res); err != nil {
			return zero, err
		}
		return res.withGroup(), nil
	}
	rs, err := listResources[T](ctx, r, provider, "")
	if err != nil {
		return zero, err
	}
	for _, res := range rs {
		if strings.EqualFold(res.resourceName(), name) {
			return res, nil
		}
	}
	return zero, fmt.Errorf("%s %s not found in the subscription", kind, name)
}

// findNamespace finds a namespace by name, in a group or anywhere in the
// subscription.
func (r *roleCtx) findNamespace(ctx context.Context, name, group string) (sbNamespace, error) {
	return findResource[sbNamespace](ctx, r, serviceBusProvider, "namespace", name, group)
}

// resourceCommand is a command on the resource of provider (a kind, such
// as vault) that --name and an optional --resource-group name.
func resourceCommand[T armResource[T]](sess roleSessionFunc, verb, short, provider, kind string,
	run func(cmd *cobra.Command, r *roleCtx, res T) error) *cobra.Command {
	var name, group string
	cmd := &cobra.Command{
		Use:   verb + " --name NAME [--resource-group RG]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := sess()
			if err != nil {
				return err
			}
			res, err := findResource[T](cmd.Context(), r, provider, kind, name, group)
			if err != nil {
				return err
			}
			return run(cmd, r, res)
		},
	}
	requiredFlag(cmd, &name, "name", "n", kind+" name (required)")
	cmd.Flags().StringVarP(&group, "resource-group", "g", "", "resource group (default: look the "+kind+" up in the subscription)")
	return cmd
}

// resourceDelete deletes the resource (id) a resourceCommand found, and
// says what went with it.
func (c *cli) resourceDelete(cmd *cobra.Command, r *roleCtx, kind, name, id, contents string) error {
	if err := r.arm.do(cmd.Context(), http.MethodDelete, id, nil, nil, nil); err != nil {
		return err
	}
	c.notef("Deleted %s %s and its %s.", kind, name, contents)
	return nil
}

func (c *cli) sbNamespaceList(sess roleSessionFunc) *cobra.Command {
	return resourceList(c, sess, "List the namespaces of a resource group or of the subscription", serviceBusProvider,
		sbNamespaceHeader, sbNamespaceRow)
}

// resourceList is the list command of the resources of provider in a
// group, or in the subscription.
func resourceList[T armResource[T]](c *cli, sess roleSessionFunc, short, provider string, header []string, row func(T) []string) *cobra.Command {
	var group string
	cmd := listCommand(c, short,
		func(cmd *cobra.Command, _ []string) ([]T, error) {
			r, err := sess()
			if err != nil {
				return nil, err
			}
			return listResources[T](cmd.Context(), r, provider, group)
		}, header, row)
	cmd.Flags().StringVarP(&group, "resource-group", "g", "", "resource group (default: the whole subscription)")
	return cmd
}

func (c *cli) sbNamespaceShow(sess roleSessionFunc) *cobra.Command {
	return resourceCommand(sess, "show", "Show a namespace", serviceBusProvider, "namespace",
		func(cmd *cobra.Command, _ *roleCtx, n sbNamespace) error {
			return c.render(cmd, n, func() table {
				return fields("Name", n.Name, "ResourceGroup", n.ResourceGroup, "Location", n.Location, "Sku", n.Sku.Name,
					"ServiceBusEndpoint", n.Properties.ServiceBusEndpoint, "Status", n.Properties.Status,
					"CreatedAt", fmtTime(n.Properties.CreatedAt), "Id", n.ID)
			})
		})
}

func (c *cli) sbNamespaceDelete(sess roleSessionFunc) *cobra.Command {
	return resourceCommand(sess, "delete", "Delete a namespace with its queues and their messages", serviceBusProvider, "namespace",
		func(cmd *cobra.Command, r *roleCtx, n sbNamespace) error {
			return c.resourceDelete(cmd, r, "namespace", n.Name, n.ID, "queues")
		})
}

// ---- queues ----

// queueFlags are the flags every queue command names its queue by.
type queueFlags struct {
	namespace, name, group string
}

func (f *queueFlags) add(cmd *cobra.Command, nameFlag string) {
	requiredFlag(cmd, &f.namespace, "namespace-name", "", "namespace name (required)")
	if nameFlag == "name" {
		requiredFlag(cmd, &f.name, "name", "n", "queue name (required)")
	} else {
		requiredFlag(cmd, &f.name, nameFlag, "", "queue name (required)")
	}
	cmd.Flags().StringVarP(&f.group, "resource-group", "g", "", "resource group (default: look the namespace up in the subscription)")
}

// resolve signs in and finds the id of the queue the flags name.
func (f *queueFlags) resolve(ctx context.Context, sess roleSessionFunc) (*roleCtx, string, error) {
	r, err := sess()
	if err != nil {
		return nil, "", err
	}
	n, err := r.findNamespace(ctx, f.namespace, f.group)
	if err != nil {
		return nil, "", err
	}
	return r, n.ID + "/queues/" + f.name, nil
}

// queueCommand is a queue command on the queue the flags name: run gets
// its id.
func queueCommand(sess roleSessionFunc, use, short string, run func(cmd *cobra.Command, f *queueFlags, r *roleCtx, id string) error) *cobra.Command {
	var f queueFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, id, err := f.resolve(cmd.Context(), sess)
			if err != nil {
				return err
			}
			return run(cmd, &f, r, id)
		},
	}
	f.add(cmd, "name")
	return cmd
}

// queueCall sends method (with body) to the queue id and prints the queue
// Resource Manager answers.
func (c *cli) queueCall(cmd *cobra.Command, r *roleCtx, method, id string, body any) error {
	var q sbQueue
	if err := r.arm.do(cmd.Context(), method, id, nil, body, &q); err != nil {
		return err
	}
	q.ResourceGroup = groupOf(q.ID)
	return c.renderQueue(cmd, q)
}

func (c *cli) sbQueueCreate(sess roleSessionFunc) *cobra.Command {
	var f queueFlags
	var lock, ttl, dupWindow string
	var maxDelivery, maxSize, maxMessage int64
	var dupDetection, deadLetterOnExpiry, session bool
	cmd := &cobra.Command{
		Use:   "create --namespace-name NS --name NAME [--lock-duration D] [--max-delivery-count N] [--default-message-time-to-live D] ...",
		Short: "Create a queue, or replace the properties of an existing one",
		Long: "Create a queue in a namespace. Durations are Go durations (30s, 1h30m) or ISO 8601 (PT30S, P14D).\n" +
			"As in Resource Manager, a PUT replaces the queue's properties: on an existing queue, a property not given\n" +
			"takes its default. Duplicate detection and sessions cannot change after the queue was created.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			props := map[string]any{}
			for _, d := range []struct{ flag, field, v string }{{"lock-duration", "lockDuration", lock},
				{"default-message-time-to-live", "defaultMessageTimeToLive", ttl},
				{"duplicate-detection-history-time-window", "duplicateDetectionHistoryTimeWindow", dupWindow}} {
				if !cmd.Flags().Changed(d.flag) {
					continue
				}
				iso, err := isoDurationFlag(d.v)
				if err != nil {
					return fmt.Errorf("--%s %q: %w", d.flag, d.v, err)
				}
				props[d.field] = iso
			}
			if cmd.Flags().Changed("max-delivery-count") {
				props["maxDeliveryCount"] = maxDelivery
			}
			if cmd.Flags().Changed("max-size") {
				props["maxSizeInMegabytes"] = maxSize
			}
			if cmd.Flags().Changed("enable-duplicate-detection") {
				props["requiresDuplicateDetection"] = dupDetection
			}
			if cmd.Flags().Changed("enable-dead-lettering-on-message-expiration") {
				props["deadLetteringOnMessageExpiration"] = deadLetterOnExpiry
			}
			if cmd.Flags().Changed("enable-session") {
				props["requiresSession"] = session
			}
			if cmd.Flags().Changed("max-message-size") {
				props["maxMessageSizeInKilobytes"] = maxMessage
			}
			r, id, err := f.resolve(ctx, sess)
			if err != nil {
				return err
			}
			return c.queueCall(cmd, r, http.MethodPut, id, map[string]any{"properties": props})
		},
	}
	f.add(cmd, "name")
	fl := cmd.Flags()
	fl.StringVar(&lock, "lock-duration", "", "how long a peek-lock holds a message, 5s-5m (default 1m)")
	fl.Int64Var(&maxDelivery, "max-delivery-count", 0, "deliveries before a message is dead-lettered (default 10)")
	fl.StringVar(&ttl, "default-message-time-to-live", "", "time to live of a message that sets none (default: forever)")
	fl.BoolVar(&dupDetection, "enable-duplicate-detection", false, "drop a message whose MessageId was sent within the history window")
	fl.StringVar(&dupWindow, "duplicate-detection-history-time-window", "", "how long MessageIds are remembered, 20s-7d (default 10m)")
	fl.BoolVar(&deadLetterOnExpiry, "enable-dead-lettering-on-message-expiration", false, "move expired messages to the dead-letter queue instead of dropping them")
	fl.Int64Var(&maxSize, "max-size", 0, "maximum size of the queue in megabytes (default 1024)")
	fl.BoolVar(&session, "enable-session", false, "messages need a SessionId and are received by accepting their session (not on Basic)")
	fl.Int64Var(&maxMessage, "max-message-size", 0, "largest message in kilobytes: Premium namespaces only, 1024 (Standard and Basic: 256)")
	return cmd
}

func (c *cli) renderQueue(cmd *cobra.Command, q sbQueue) error {
	return c.render(cmd, q, func() table {
		p := q.Properties
		return fields("Name", q.Name, "Namespace", namespaceOf(q.ID), "ResourceGroup", q.ResourceGroup, "Status", p.Status,
			"LockDuration", p.LockDuration, "MaxDeliveryCount", strconv.FormatInt(p.MaxDeliveryCount, 10),
			"DefaultMessageTimeToLive", p.DefaultMessageTimeToLive,
			"RequiresDuplicateDetection", strconv.FormatBool(p.RequiresDuplicateDetection),
			"DuplicateDetectionHistoryTimeWindow", p.DuplicateDetectionHistoryTimeWindow,
			"DeadLetteringOnMessageExpiration", strconv.FormatBool(p.DeadLetteringOnMessageExpiration),
			"MaxSizeInMegabytes", strconv.FormatInt(p.MaxSizeInMegabytes, 10),
			"RequiresSession", strconv.FormatBool(p.RequiresSession),
			"MaxMessageSizeInKilobytes", strconv.FormatInt(p.MaxMessageSizeInKilobytes, 10),
			"MessageCount", strconv.FormatInt(p.MessageCount, 10),
			"ActiveMessageCount", strconv.FormatInt(p.CountDetails.ActiveMessageCount, 10),
			"DeadLetterMessageCount", strconv.FormatInt(p.CountDetails.DeadLetterMessageCount, 10),
			"ScheduledMessageCount", strconv.FormatInt(p.CountDetails.ScheduledMessageCount, 10),
			"SizeInBytes", strconv.FormatInt(p.SizeInBytes, 10), "Id", q.ID)
	})
}

func (c *cli) sbQueueShow(sess roleSessionFunc) *cobra.Command {
	return queueCommand(sess, "show --namespace-name NS --name NAME", "Show a queue: its properties and its message counts",
		func(cmd *cobra.Command, _ *queueFlags, r *roleCtx, id string) error {
			return c.queueCall(cmd, r, http.MethodGet, id, nil)
		})
}

func (c *cli) sbQueueList(sess roleSessionFunc) *cobra.Command {
	var namespace, group string
	cmd := listCommand(c, "List the queues of a namespace, with their message counts",
		func(cmd *cobra.Command, _ []string) ([]sbQueue, error) {
			ctx := cmd.Context()
			r, err := sess()
			if err != nil {
				return nil, err
			}
			n, err := r.findNamespace(ctx, namespace, group)
			if err != nil {
				return nil, err
			}
			var out struct{ Value []sbQueue }
			if err := r.arm.do(ctx, http.MethodGet, n.ID+"/queues", nil, nil, &out); err != nil {
				return nil, err
			}
			for i := range out.Value {
				out.Value[i].ResourceGroup = groupOf(out.Value[i].ID)
			}
			return out.Value, nil
		}, sbQueueHeader, sbQueueRow)
	cmd.Use = "list --namespace-name NS"
	requiredFlag(cmd, &namespace, "namespace-name", "", "namespace name (required)")
	cmd.Flags().StringVarP(&group, "resource-group", "g", "", "resource group (default: look the namespace up in the subscription)")
	return cmd
}

func (c *cli) sbQueueDelete(sess roleSessionFunc) *cobra.Command {
	return queueCommand(sess, "delete --namespace-name NS --name NAME", "Delete a queue and its messages",
		func(cmd *cobra.Command, f *queueFlags, r *roleCtx, id string) error {
			ctx := cmd.Context()
			// ARM answers a DELETE of nothing with 204; say so instead of
			// reporting a deletion that did not happen.
			if err := r.arm.do(ctx, http.MethodGet, id, nil, nil, nil); err != nil {
				return err
			}
			if err := r.arm.do(ctx, http.MethodDelete, id, nil, nil, nil); err != nil {
				return err
			}
			c.notef("Deleted queue %s of namespace %s and its messages.", f.name, f.namespace)
			return nil
		})
}

// ---- durations ----

// isoDurationRE is an ISO 8601 duration as Service Bus takes them
// (a year is 365 days, a month 30, as .NET's XmlConvert has it).
var isoDurationRE = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISOSeconds parses an ISO 8601 duration into seconds.
func parseISOSeconds(s string) (float64, bool) {
	s = strings.ToUpper(s)
	m := isoDurationRE.FindStringSubmatch(s)
	if m == nil || s == "P" || strings.HasSuffix(s, "T") {
		return 0, false
	}
	units := []float64{365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1}
	total := 0.0
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		v, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, false
		}
		total += v * u
	}
	return total, !math.IsInf(total, 0)
}

// durationSeconds reads a Go duration (30s, 1h30m) or an ISO 8601 one
// (PT30S, P14D) into seconds.
func durationSeconds(s string) (float64, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, errors.New("must be positive")
		}
		return d.Seconds(), nil
	}
	if secs, ok := parseISOSeconds(s); ok {
		if secs <= 0 {
			return 0, errors.New("must be positive")
		}
		return secs, nil
	}
	return 0, errors.New("not a duration: use a Go duration (30s, 1h30m) or ISO 8601 (PT30S, P14D)")
}

// isoDurationFlag turns a duration flag into the ISO 8601 Resource Manager
// takes: an ISO value as given, a Go duration converted.
func isoDurationFlag(s string) (string, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return "", errors.New("must be positive")
		}
		return formatISODuration(d), nil
	}
	if _, err := durationSeconds(s); err != nil {
		return "", err
	}
	return strings.ToUpper(s), nil
}

// formatISODuration writes d as P[nD][T[nH][nM][n[.f]S]].
func formatISODuration(d time.Duration) string {
	var b strings.Builder
	b.WriteByte('P')
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dD", days)
		d -= days * 24 * time.Hour
	}
	if d == 0 {
		return b.String()
	}
	b.WriteByte('T')
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dH", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dM", m)
		d -= m * time.Minute
	}
	if d > 0 {
		b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S")
	}
	return b.String()
}

// ---- the data plane ----

// sbClient calls one namespace's REST data plane.
type sbClient struct {
	pl        runtime.Pipeline
	namespace string
	host      string
}

// sbError is a Service Bus REST error: <Error><Code/><Detail/></Error>.
type sbError struct {
	Status int
	Detail string
}

func (e *sbError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Detail, e.Status)
}

// sbDataClient signs in for Service Bus and addresses namespace. It never
// retries: a send or a receive-and-delete is not idempotent.
func (c *cli) sbDataClient(sess roleSessionFunc, namespace string) (*sbClient, error) {
	r, err := sess()
	if err != nil {
		return nil, err
	}
	opts, _, err := c.clientOptions()
	if err != nil {
		return nil, err
	}
	opts.Retry.MaxRetries = -1
	bearer := runtime.NewBearerTokenPolicy(r.s.cred, []string{serviceBusScope}, nil)
	pl := runtime.NewPipeline("tenantbridge/cli", "v0.1.0", runtime.PipelineOptions{PerRetry: []policy.Policy{bearer}}, &opts)
	ns := strings.ToLower(namespace)
	return &sbClient{pl: pl, namespace: ns, host: ns + ".servicebus.windows.net"}, nil
}

// sbResponse is a data-plane answer read in full.
type sbResponse struct {
	status int
	header http.Header
	body   []byte
}

// do sends method to rawURL (or https://{host}{path}?query) and reads the
// answer; a status outside 2xx is an *sbError.
func (s *sbClient) do(ctx context.Context, method, rawURL string, header http.Header, body []byte, contentType string) (sbResponse, error) {
	req, err := runtime.NewRequest(ctx, method, rawURL)
	if err != nil {
		return sbResponse{}, err
	}
	for k, vs := range header {
		req.Raw().Header[k] = vs
	}
	if body != nil {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), contentType); err != nil {
			return sbResponse{}, err
		}
	}
	resp, err := s.pl.Do(req)
	if err != nil {
		return sbResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return sbResponse{}, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var doc struct {
			Detail string `xml:"Detail"`
		}
		_ = xml.Unmarshal(raw, &doc)
		return sbResponse{}, &sbError{Status: resp.StatusCode, Detail: strings.Join(strings.Fields(doc.Detail), " ")}
	}
	return sbResponse{status: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// url is https://{host}/{path}?query.
func (s *sbClient) url(path string, query url.Values) string {
	u := url.URL{Scheme: "https", Host: s.host, Path: "/" + path}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	return u.String()
}

// explain makes a data-plane error one clear line about the queue.
func (s *sbClient) explain(err error, queue string) error {
	var se *sbError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Status {
	case http.StatusNotFound, http.StatusGone:
		if strings.Contains(se.Detail, "namespace") {
			return fmt.Errorf("namespace %s not found: %w", s.namespace, err)
		}
		return fmt.Errorf("queue %s not found in namespace %s: %w", queue, s.namespace, err)
	case http.StatusUnauthorized:
		return fmt.Errorf("not allowed on queue %s of namespace %s (a Service Bus data role such as %s is needed): %w",
			queue, s.namespace, serviceBusDataOwnerName, err)
	}
	return err
}

// entityPath is the queue's path, or its dead-letter queue's.
func entityPath(queue string, deadLetter bool) string {
	if deadLetter {
		return queue + "/$DeadLetterQueue"
	}
	return queue
}

// sbMessage is a message as the CLI prints it. Body is the body when it is
// valid UTF-8 (byte for byte), BodyBase64 otherwise.
type sbMessage struct {
	SequenceNumber             int64          `json:"sequenceNumber"`
	MessageID                  string         `json:"messageId"`
	Body                       *string        `json:"body,omitempty"`
	BodyBase64                 []byte         `json:"bodyBase64,omitempty"`
	ContentType                string         `json:"contentType,omitempty"`
	Label                      string         `json:"label,omitempty"`
	CorrelationID              string         `json:"correlationId,omitempty"`
	ReplyTo                    string         `json:"replyTo,omitempty"`
	To                         string         `json:"to,omitempty"`
	SessionID                  string         `json:"sessionId,omitempty"`
	PartitionKey               string         `json:"partitionKey,omitempty"`
	State                      string         `json:"state,omitempty"`
	DeliveryCount              int64          `json:"deliveryCount"`
	EnqueuedTime               *time.Time     `json:"enqueuedTime,omitempty"`
	ScheduledEnqueueTime       *time.Time     `json:"scheduledEnqueueTime,omitempty"`
	TimeToLive                 *float64       `json:"timeToLiveSeconds,omitempty"`
	LockToken                  string         `json:"lockToken,omitempty"`
	LockedUntil                *time.Time     `json:"lockedUntil,omitempty"`
	Properties                 map[string]any `json:"properties,omitempty"`
	DeadLetterReason           string         `json:"deadLetterReason,omitempty"`
	DeadLetterErrorDescription string         `json:"deadLetterErrorDescription,omitempty"`
	// Settlement is what receive did with the message: deleted
	// (receive-and-delete), completed, abandoned, or locked (peek-lock,
	// neither completed nor abandoned: redelivered when the lock expires).
	Settlement string `json:"settlement,omitempty"`
	// rawProps keeps the custom properties as they came on the wire, for
	// the table.
	rawProps map[string]string
}

// wireBroker is the BrokerProperties JSON.
type wireBroker struct {
	CorrelationId           string
	DeliveryCount           int64
	EnqueuedTimeUtc         string
	Label                   string
	LockToken               string
	LockedUntilUtc          string
	MessageId               string
	PartitionKey            string
	ReplyTo                 string
	ScheduledEnqueueTimeUtc string
	SequenceNumber          int64
	SessionId               string
	State                   string
	TimeToLive              *float64
	To                      string
}

// sbTime reads a Service Bus REST date (RFC 1123); nil when absent.
func sbTime(s string) *time.Time {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	t, err := http.ParseTime(strings.TrimSpace(s))
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

func messageOf(bp wireBroker, body []byte, contentType string) sbMessage {
	m := sbMessage{SequenceNumber: bp.SequenceNumber, MessageID: bp.MessageId, ContentType: contentType, Label: bp.Label,
		CorrelationID: bp.CorrelationId, ReplyTo: bp.ReplyTo, To: bp.To, SessionID: bp.SessionId, PartitionKey: bp.PartitionKey,
		State: bp.State, DeliveryCount: bp.DeliveryCount, EnqueuedTime: sbTime(bp.EnqueuedTimeUtc),
		ScheduledEnqueueTime: sbTime(bp.ScheduledEnqueueTimeUtc), TimeToLive: bp.TimeToLive, LockToken: bp.LockToken,
		LockedUntil: sbTime(bp.LockedUntilUtc), rawProps: map[string]string{}}
	if utf8.Valid(body) {
		s := string(body)
		m.Body = &s
	} else {
		m.BodyBase64 = body
	}
	return m
}

// setProperty files a custom property; Service Bus carries the dead-letter
// reason and description as custom properties, and so do we.
func (m *sbMessage) setProperty(name string, v any, raw string) {
	switch strings.ToLower(name) {
	case "deadletterreason":
		m.DeadLetterReason, _ = v.(string)
		return
	case "deadlettererrordescription":
		m.DeadLetterErrorDescription, _ = v.(string)
		return
	}
	if m.Properties == nil {
		m.Properties = map[string]any{}
	}
	m.Properties[name] = v
	m.rawProps[name] = raw
}

// propertyValue types a custom property header as Service Bus REST does:
// quoted is a string (or a date, kept as its text), true/false a bool, a
// number a number, anything else a string.
func propertyValue(raw string) any {
	s := strings.Trim(raw, " \t")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !strings.ContainsRune("0123456789+-.eE", r)
	}) < 0 {
		return json.Number(s)
	}
	return s
}

// wireHeaders are request and response headers that are never custom
// properties, besides the prefixes in isWireHeader.
var wireHeaders = map[string]bool{
	"authorization": true, "brokerproperties": true, "content-type": true, "location": true,
	"accept": true, "connection": true, "content-length": true, "date": true, "expect": true,
	"host": true, "keep-alive": true, "range": true, "referer": true, "transfer-encoding": true,
	"upgrade": true, "user-agent": true, "te": true, "trailer": true, "cache-control": true,
	"pragma": true, "cookie": true, "set-cookie": true, "origin": true, "via": true, "forwarded": true,
	"x-real-ip": true, "server": true, "www-authenticate": true, "traceparent": true, "tracestate": true,
	"baggage": true, "request-id": true, "correlation-context": true, "strict-transport-security": true,
	"vary": true, "alt-svc": true, "x-content-type-options": true, "x-frame-options": true,
	"x-request-id": true, "expires": true, "etag": true, "last-modified": true, "retry-after": true,
}

// isWireHeader reports whether name is an HTTP or Service Bus header rather
// than a custom property (the REST docs exclude the restricted headers).
func isWireHeader(name string) bool {
	l := strings.ToLower(name)
	if wireHeaders[l] {
		return true
	}
	for _, p := range []string{"x-ms-", "accept-", "content-", "if-", "x-forwarded-", "proxy-", "sec-", "access-control-"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// receivedMessage reads a receive's answer: body, BrokerProperties and the
// custom properties as headers.
func receivedMessage(resp sbResponse) (sbMessage, error) {
	var bp wireBroker
	if h := resp.header.Get("BrokerProperties"); h != "" {
		if err := json.Unmarshal([]byte(h), &bp); err != nil {
			return sbMessage{}, fmt.Errorf("the BrokerProperties header of the received message is not JSON: %w", err)
		}
	}
	m := messageOf(bp, resp.body, resp.header.Get("Content-Type"))
	for name, vs := range resp.header {
		if isWireHeader(name) || len(vs) == 0 {
			continue
		}
		m.setProperty(name, propertyValue(vs[0]), vs[0])
	}
	return m, nil
}

// peekedMessage is one element of tenantbridge's peek answer.
type peekedMessage struct {
	Body             *string        `json:"Body"`
	BodyBase64       []byte         `json:"BodyBase64"`
	ContentType      string         `json:"ContentType"`
	BrokerProperties wireBroker     `json:"BrokerProperties"`
	UserProperties   map[string]any `json:"UserProperties"`
}

// renderMessages prints messages as JSON, or each as a table of its
// properties followed by its body, verbatim.
func (c *cli) renderMessages(cmd *cobra.Command, msgs []sbMessage) error {
	if msgs == nil {
		msgs = []sbMessage{}
	}
	if c.structured(cmd) {
		return c.emit(cmd, msgs)
	}
	for i, m := range msgs {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		t := fields("SequenceNumber", strconv.FormatInt(m.SequenceNumber, 10), "MessageId", m.MessageID)
		add := func(k, v string) {
			if v != "" {
				t.rows = append(t.rows, []string{k, v})
			}
		}
		add("ContentType", m.ContentType)
		add("Label", m.Label)
		add("CorrelationId", m.CorrelationID)
		add("State", m.State)
		t.rows = append(t.rows, []string{"DeliveryCount", strconv.FormatInt(m.DeliveryCount, 10)})
		if m.EnqueuedTime != nil {
			add("EnqueuedTime", fmtTime(*m.EnqueuedTime))
		}
		if m.ScheduledEnqueueTime != nil {
			add("ScheduledEnqueueTime", fmtTime(*m.ScheduledEnqueueTime))
		}
		if m.TimeToLive != nil {
			add("TimeToLive", strconv.FormatFloat(*m.TimeToLive, 'f', -1, 64)+"s")
		}
		add("LockToken", m.LockToken)
		if m.LockedUntil != nil {
			add("LockedUntil", fmtTime(*m.LockedUntil))
		}
		add("DeadLetterReason", m.DeadLetterReason)
		add("DeadLetterErrorDescription", m.DeadLetterErrorDescription)
		names := make([]string, 0, len(m.rawProps))
		for k := range m.rawProps {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			t.rows = append(t.rows, []string{"Property " + k, m.rawProps[k]})
		}
		add("Settlement", m.Settlement)
		if err := t.write(c.stdout); err != nil {
			return err
		}
		if m.Body != nil {
			fmt.Fprintf(c.stdout, "Body (%d bytes):\n", len(*m.Body))
			body := *m.Body
			if !strings.HasSuffix(body, "\n") {
				body += "\n"
			}
			if _, err := io.WriteString(c.stdout, body); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(c.stdout, "Body (%d bytes, not UTF-8, base64):\n%s\n", len(m.BodyBase64), base64Std(m.BodyBase64))
		}
	}
	return nil
}

func base64Std(b []byte) string {
	out, _ := json.Marshal(b) // a []byte marshals as a base64 JSON string
	return strings.Trim(string(out), `"`)
}

// messageFlags name the queue a message command works on.
type messageFlags struct {
	namespace, queue string
}

func (f *messageFlags) add(cmd *cobra.Command) {
	requiredFlag(cmd, &f.namespace, "namespace-name", "", "namespace name (required)")
	requiredFlag(cmd, &f.queue, "queue-name", "q", "queue name (required)")
}

// propertyNameOK is an HTTP token: what a custom property header name
// must be.
func propertyNameOK(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if r > 0x7e || r <= 0x20 || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}

func (c *cli) sbMessageSend(sess roleSessionFunc) *cobra.Command {
	var f messageFlags
	var body, label, messageID, ttl, scheduled, contentType, correlationID string
	var props []string
	cmd := &cobra.Command{
		Use:   "send --namespace-name NS --queue-name Q [--body TEXT | < FILE] [--properties K=V ...] [--label L] [--message-id ID] [--ttl D] ...",
		Short: "Send a message to a queue (the body from --body, or from stdin)",
		Long: "Send one message. Without --body the body is read from stdin, byte for byte (at most 256 KiB).\n" +
			"--properties K=V sets a custom property; repeat it for more. As in Service Bus REST, a value is typed by its\n" +
			"form: true/false is a bool, 42 an integer, 1.5 a double, anything else (or a value in double quotes, such as\n" +
			"'\"42\"') a string. --ttl takes a Go duration (90s) or ISO 8601 (PT90S); --scheduled-enqueue-time an\n" +
			"RFC 3339 time or a Go duration from now (5m).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var payload []byte
			if cmd.Flags().Changed("body") {
				payload = []byte(body)
			} else {
				in := cmd.InOrStdin()
				if fi, ok := in.(*os.File); ok {
					if st, err := fi.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
						return errors.New("give the message body with --body, or pipe it on stdin")
					}
				}
				b, err := io.ReadAll(io.LimitReader(in, maxMessageBytes+1))
				if err != nil {
					return fmt.Errorf("read the body from stdin: %w", err)
				}
				payload = b
			}
			if len(payload) > maxMessageBytes {
				return fmt.Errorf("the body is larger than %d bytes, Service Bus's message size limit", maxMessageBytes)
			}
			bp := map[string]any{}
			if messageID == "" {
				messageID = strings.ReplaceAll(uuid.NewString(), "-", "")
			}
			bp["MessageId"] = messageID
			if label != "" {
				bp["Label"] = label
			}
			if correlationID != "" {
				bp["CorrelationId"] = correlationID
			}
			if ttl != "" {
				secs, err := durationSeconds(ttl)
				if err != nil {
					return fmt.Errorf("--ttl %q: %w", ttl, err)
				}
				bp["TimeToLive"] = secs
			}
			var at time.Time
			if scheduled != "" {
				t, err := time.Parse(time.RFC3339, scheduled)
				if err != nil {
					d, derr := time.ParseDuration(scheduled)
					if derr != nil || d < 0 {
						return fmt.Errorf("--scheduled-enqueue-time %q: not an RFC 3339 time (2030-01-02T15:04:05Z) or a duration from now (5m)", scheduled)
					}
					t = time.Now().Add(d)
				}
				at = t.UTC()
				bp["ScheduledEnqueueTimeUtc"] = at.Format(http.TimeFormat)
			}
			brokerJSON, err := json.Marshal(bp)
			if err != nil {
				return err
			}
			header := http.Header{}
			header["BrokerProperties"] = []string{string(brokerJSON)}
			seen := map[string]bool{}
			for _, kv := range props {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || !propertyNameOK(k) {
					return fmt.Errorf("--properties %q: want NAME=VALUE, NAME made of letters, digits and -_.!#$%%&'*+^`|~", kv)
				}
				if isWireHeader(k) {
					return fmt.Errorf("--properties %q: %s is an HTTP header name Service Bus does not carry as a property", kv, k)
				}
				if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 || !utf8.ValidString(v) {
					return fmt.Errorf("--properties %q: the value must be one line of UTF-8 text", kv)
				}
				canon := http.CanonicalHeaderKey(k)
				if seen[canon] {
					return fmt.Errorf("--properties: %s is given twice (names are case-insensitive)", k)
				}
				seen[canon] = true
				header[canon] = []string{v}
			}
			s, err := c.sbDataClient(sess, f.namespace)
			if err != nil {
				return err
			}
			if _, err := s.do(ctx, http.MethodPost, s.url(f.queue+"/messages", nil), header, payload, contentType); err != nil {
				return s.explain(err, f.queue)
			}
			out := struct {
				MessageID            string     `json:"messageId"`
				Namespace            string     `json:"namespace"`
				Queue                string     `json:"queue"`
				Size                 int        `json:"size"`
				ScheduledEnqueueTime *time.Time `json:"scheduledEnqueueTime,omitempty"`
			}{MessageID: messageID, Namespace: f.namespace, Queue: f.queue, Size: len(payload)}
			if !at.IsZero() {
				out.ScheduledEnqueueTime = &at
			}
			return c.render(cmd, out, func() table {
				t := fields("MessageId", out.MessageID, "Namespace", out.Namespace, "Queue", out.Queue, "Size", strconv.Itoa(out.Size))
				if out.ScheduledEnqueueTime != nil {
					t.rows = append(t.rows, []string{"ScheduledEnqueueTime", fmtTime(at)})
				}
				return t
			})
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&body, "body", "", "the message body (default: read stdin)")
	fl.StringArrayVar(&props, "properties", nil, "a custom property NAME=VALUE (repeatable)")
	fl.StringVar(&label, "label", "", "the message's label (subject)")
	fl.StringVar(&messageID, "message-id", "", "the message id (default: a new GUID); duplicate detection works on it")
	fl.StringVar(&correlationID, "correlation-id", "", "the message's correlation id")
	fl.StringVar(&ttl, "ttl", "", "time to live: a Go duration or ISO 8601 (default: the queue's)")
	fl.StringVar(&scheduled, "scheduled-enqueue-time", "", "deliver no earlier than this: RFC 3339, or a duration from now")
	fl.StringVar(&contentType, "content-type", "", "the body's content type")
	return cmd
}

func (c *cli) sbMessageReceive(sess roleSessionFunc) *cobra.Command {
	var f messageFlags
	var timeoutFlag string
	var peekLock, complete, abandon, deadLetter bool
	var maxMessages int
	cmd := &cobra.Command{
		Use:   "receive --namespace-name NS --queue-name Q [--timeout D] [--peek-lock [--complete | --abandon]] [--dead-letter] [--max-messages N]",
		Short: "Receive messages: receive-and-delete, or peek-lock and then complete or abandon",
		Long: "Receive up to --max-messages messages, waiting up to --timeout in all for them to arrive.\n" +
			"By default each message is received and deleted. With --peek-lock it is locked instead, and then completed\n" +
			"(--complete: removed), abandoned (--abandon: unlocked for redelivery), or left locked, to be redelivered when\n" +
			"its lock expires. --complete and --abandon imply --peek-lock. --dead-letter receives from the queue's\n" +
			"dead-letter queue. No message in time is not an error: the output is empty.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if complete && abandon {
				return errors.New("--complete and --abandon exclude each other")
			}
			if complete || abandon {
				peekLock = true
			}
			if maxMessages < 1 {
				return errors.New("--max-messages must be at least 1")
			}
			timeout, err := time.ParseDuration(timeoutFlag)
			if n, nerr := strconv.Atoi(timeoutFlag); nerr == nil {
				timeout, err = time.Duration(n)*time.Second, nil
			}
			if err != nil || timeout < 0 {
				return fmt.Errorf("--timeout %q: want seconds (30) or a Go duration (30s, 2m)", timeoutFlag)
			}
			s, err := c.sbDataClient(sess, f.namespace)
			if err != nil {
				return err
			}
			method := http.MethodDelete
			if peekLock {
				method = http.MethodPost
			}
			path := entityPath(f.queue, deadLetter) + "/messages/head"
			deadline := time.Now().Add(timeout)
			var msgs []sbMessage
			var locations []string
			for len(msgs) < maxMessages {
				wait := min(max(time.Until(deadline), 0), longPollSlice)
				resp, err := s.do(ctx, method, s.url(path, url.Values{"timeout": {strconv.Itoa(int(wait / time.Second))}}), nil, nil, "")
				if err != nil {
					return c.partial(cmd, msgs, s.explain(err, f.queue))
				}
				if resp.status == http.StatusNoContent {
					if time.Until(deadline) >= time.Second {
						continue // the slice of a long timeout ran out
					}
					break
				}
				m, err := receivedMessage(resp)
				if err != nil {
					return c.partial(cmd, msgs, err)
				}
				m.Settlement = "deleted"
				if peekLock {
					m.Settlement = "locked"
					loc := resp.header.Get("Location")
					if err := s.checkLocation(loc); err != nil {
						return c.partial(cmd, append(msgs, m), err)
					}
					locations = append(locations, loc)
				}
				msgs = append(msgs, m)
			}
			// Settle after receiving, so that abandoned messages are not
			// received again by this same command.
			for i, loc := range locations {
				var err error
				switch {
				case complete:
					_, err = s.do(ctx, http.MethodDelete, loc, nil, nil, "")
					msgs[i].Settlement = "completed"
				case abandon:
					_, err = s.do(ctx, http.MethodPut, loc, nil, nil, "")
					msgs[i].Settlement = "abandoned"
				}
				if err != nil {
					msgs[i].Settlement = "locked"
					return c.partial(cmd, msgs, fmt.Errorf("message %d was received but not settled: %w", msgs[i].SequenceNumber, s.explain(err, f.queue)))
				}
			}
			if len(msgs) == 0 {
				c.notef("No message arrived within %s.", timeout)
			}
			return c.renderMessages(cmd, msgs)
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&timeoutFlag, "timeout", "5", "how long to wait for messages to arrive: seconds, or a Go duration (2m)")
	fl.BoolVar(&peekLock, "peek-lock", false, "lock the messages instead of deleting them")
	fl.BoolVar(&complete, "complete", false, "complete each locked message (remove it)")
	fl.BoolVar(&abandon, "abandon", false, "abandon each locked message (unlock it for redelivery)")
	fl.BoolVar(&deadLetter, "dead-letter", false, "receive from the queue's dead-letter queue")
	fl.IntVar(&maxMessages, "max-messages", 1, "receive at most this many messages")
	return cmd
}

// partial prints the messages already received (they are gone from the
// queue, or locked) before returning err: a receive never loses a message
// on the way to the terminal.
func (c *cli) partial(cmd *cobra.Command, msgs []sbMessage, err error) error {
	if len(msgs) > 0 {
		if rerr := c.renderMessages(cmd, msgs); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

// checkLocation refuses a settle URL on another host than the namespace's,
// where the bearer token must not go.
func (s *sbClient) checkLocation(loc string) error {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Hostname(), s.host) {
		return fmt.Errorf("the message was locked, but its Location %q is not on %s: not settled", loc, s.host)
	}
	return nil
}

func (c *cli) sbMessagePeek(sess roleSessionFunc) *cobra.Command {
	var f messageFlags
	var top int
	var from int64
	var deadLetter bool
	cmd := &cobra.Command{
		Use:   "peek --namespace-name NS --queue-name Q [--top N] [--from-sequence S] [--dead-letter]",
		Short: "Look at messages without locking or removing them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if top < 1 || top > 100 {
				return errors.New("--top must be from 1 to 100")
			}
			if from < 0 {
				return errors.New("--from-sequence must not be negative")
			}
			s, err := c.sbDataClient(sess, f.namespace)
			if err != nil {
				return err
			}
			q := url.Values{"top": {strconv.Itoa(top)}}
			if from > 0 {
				q.Set("fromSequenceNumber", strconv.FormatInt(from, 10))
			}
			resp, err := s.do(ctx, http.MethodGet, s.url(entityPath(f.queue, deadLetter)+"/messages", q), nil, nil, "")
			if err != nil {
				return s.explain(err, f.queue)
			}
			var peeked []peekedMessage
			dec := json.NewDecoder(bytes.NewReader(resp.body))
			dec.UseNumber() // an Int64 property stays exact
			if err := dec.Decode(&peeked); err != nil {
				return fmt.Errorf("the peek answer is not JSON: %w", err)
			}
			msgs := make([]sbMessage, 0, len(peeked))
			for _, p := range peeked {
				body := p.BodyBase64
				if p.Body != nil {
					body = []byte(*p.Body)
				}
				m := messageOf(p.BrokerProperties, body, p.ContentType)
				for k, v := range p.UserProperties {
					raw, _ := json.Marshal(v)
					m.setProperty(k, v, string(raw))
				}
				msgs = append(msgs, m)
			}
			return c.renderMessages(cmd, msgs)
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&top, "top", 10, "peek at most this many messages, 1-100")
	cmd.Flags().Int64Var(&from, "from-sequence", 0, "start at this sequence number (default: the first)")
	cmd.Flags().BoolVar(&deadLetter, "dead-letter", false, "peek the queue's dead-letter queue")
	return cmd
}
